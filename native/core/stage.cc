#include "stage.h"

#include "dense_stage.h"
#include "dropout_stage.h"
#include "embedding_stage.h"
#include "recurrent_stage.h"

namespace rnnkit {

std::unique_ptr<Stage> makeStage(Backend& be, const StageSpec& spec, int inputFeatures, int vocab) {
  switch (spec.kind) {
    case StageKind::Embedding: return std::make_unique<EmbeddingStage>(be, spec, vocab);
    case StageKind::Recurrent:
      return std::make_unique<RecurrentStage>(be, spec, vocab > 0 ? vocab : inputFeatures, vocab > 0);
    case StageKind::Dense: return std::make_unique<DenseStage>(be, spec, inputFeatures);
    case StageKind::Dropout: return std::make_unique<DropoutStage>(be, spec);
  }
  return nullptr;
}

}  // namespace rnnkit
