// Optimizer descriptions with PyTorch's defaults; the update itself runs natively.
import type { NativeOptimizerConfig } from './native';

export type OptimizerConfig = NativeOptimizerConfig;

export const optimizers = {
  /** Adam (L2 weight decay added to the gradient, as torch.optim.Adam). */
  adam(o: Omit<OptimizerConfig, 'type'> = {}): OptimizerConfig {
    return { type: 'adam', lr: 1e-3, ...o };
  },
  /** AdamW (decoupled weight decay, default 0.01). */
  adamw(o: Omit<OptimizerConfig, 'type'> = {}): OptimizerConfig {
    return { type: 'adamw', lr: 1e-3, weightDecay: 1e-2, ...o };
  },
  sgd(o: Omit<OptimizerConfig, 'type'> = {}): OptimizerConfig {
    return { type: 'sgd', lr: 1e-2, ...o };
  },
  rmsprop(o: Omit<OptimizerConfig, 'type'> = {}): OptimizerConfig {
    return { type: 'rmsprop', lr: 1e-2, ...o };
  },
};
