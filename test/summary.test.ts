// summary() and layerSummaries() show the layers stacked inside a recurrent layer (numLayers > 1).
import t from 'tap';
import { sequential, layers } from '../lib';

t.test('stacked layers: one row each under their layer, with their shapes and parameters', async (t) => {
  const m = sequential({
    vocabSize: 5,
    seed: 1,
    layers: [
      layers.embedding({ outputDim: 4 }),
      layers.lstm({ units: 3, numLayers: 3, returnSequences: true, bidirectional: true, stackDropout: 0.2 }),
      layers.gru({ units: 2, numLayers: 2 }),
      layers.dense({ units: 5 }),
    ],
  });
  const rows = m.layerSummaries();
  const [, lstm, gru] = rows;
  t.equal(lstm.type, 'bidirectional lstm, 3 stacked, dropout 0.2 between');
  t.same(lstm.stacked?.map((r) => r.name), ['lstm_1.l0', 'lstm_1.l1', 'lstm_1.l2']);
  t.same(lstm.stacked?.map((r) => r.outputShape), [[null, null, 6], [null, null, 6], [null, null, 6]]);
  // PyTorch: layer 0 reads 4 inputs, the others 2*3; per direction 4 gates * 3 units.
  const dir = (inputs: number): number => 4 * 3 * inputs + 4 * 3 * 3 + 2 * 4 * 3;
  t.same(lstm.stacked?.map((r) => r.params), [2 * dir(4), 2 * dir(6), 2 * dir(6)]);
  t.equal(lstm.params, 2 * dir(4) + 4 * dir(6), 'the layer row counts the whole stack');
  t.same(gru.stacked?.map((r) => r.outputShape), [[null, null, 2], [null, 2]], 'below the top every step is output');
  t.equal(rows[0].stacked, undefined, 'no stack rows for other layers');
  const text = m.summary();
  t.match(text, /\n {2}lstm_1\.l1 \(bidirectional lstm\)/, 'stacked rows are indented under their layer');
  const total = rows.reduce((a, r) => a + r.params, 0);
  t.match(text, new RegExp(`Total params: ${total}\\b`), 'the total counts each parameter once');
  t.equal(total, m.getWeights() && Object.values(m.getWeights()).reduce((a, w) => a + w.data.length, 0), 'and equals the weights');
  m.dispose();
});
