// Optimizer descriptions; the update itself runs natively. The defaults have ONE owner, the native optimizer
// (native/core/optimizer.cc, OptimizerConfig::defaults), which applies the same values to `optimizers.sgd()` and to a
// plain `{ type: 'sgd' }`: these helpers only name the type and pass on what the caller sets. The values are
// PyTorch's, whose update rules the optimizers follow:
//
//   optimizer   lr      other defaults
//   sgd         1e-3    momentum 0, dampening 0, nesterov false, weightDecay 0
//   adam        1e-3    betas [0.9, 0.999], eps 1e-8, weightDecay 0 (L2, added to the gradient), amsgrad false
//   adamw       1e-3    betas [0.9, 0.999], eps 1e-8, weightDecay 1e-2 (decoupled), amsgrad false
//   rmsprop     1e-2    alpha 0.99, eps 1e-8, momentum 0, centered false, weightDecay 0
//
// (Keras differs on two: SGD 1e-2 and RMSprop 1e-3 with rho 0.9; pass `lr` to get those.) `optimizerInfo()` of a
// network reports the lr in force.
import type { NativeOptimizerConfig } from './native';

export type OptimizerConfig = NativeOptimizerConfig;

type Options = Omit<OptimizerConfig, 'type'>;

export const optimizers = {
  /** SGD with optional momentum, dampening, Nesterov and weight decay (torch.optim.SGD); lr 1e-3 by default. */
  sgd(o: Options = {}): OptimizerConfig {
    return { type: 'sgd', ...o };
  },
  /** Adam (L2 weight decay added to the gradient, as torch.optim.Adam); lr 1e-3 by default. */
  adam(o: Options = {}): OptimizerConfig {
    return { type: 'adam', ...o };
  },
  /** AdamW (decoupled weight decay, torch.optim.AdamW); lr 1e-3 and weightDecay 1e-2 by default. */
  adamw(o: Options = {}): OptimizerConfig {
    return { type: 'adamw', ...o };
  },
  /** RMSprop (torch.optim.RMSprop); lr 1e-2, alpha 0.99 by default. */
  rmsprop(o: Options = {}): OptimizerConfig {
    return { type: 'rmsprop', ...o };
  },
};
