// One table of optimizer defaults, owned by the native optimizer: the builder's helpers and a plain { type } get the
// same values, PyTorch's.
import t from 'tap';
import { RecurrentNetwork, optimizers, type OptimizerConfig } from '../lib';

t.test('optimizers.<name>() and { type: name } get the same defaults, PyTorch\'s', async (t) => {
  const pytorchLr: Record<OptimizerConfig['type'], number> = { sgd: 1e-3, adam: 1e-3, adamw: 1e-3, rmsprop: 1e-2 };
  const net = new RecurrentNetwork({ cell: 'gru', inputSize: 2, hiddenSize: 3, seed: 1 });
  for (const type of Object.keys(pytorchLr) as OptimizerConfig['type'][]) {
    const helper = optimizers[type]();
    t.same(helper, { type }, `optimizers.${type}() sets no default of its own`);
    net.setOptimizer(helper);
    const viaHelper = net.optimizerInfo()!.lr;
    net.setOptimizer({ type });
    const viaType = net.optimizerInfo()!.lr;
    t.equal(viaHelper, viaType, `${type}: same lr either way`);
    t.ok(Math.abs(viaType - pytorchLr[type]) < 1e-12, `${type}: lr ${viaType} is PyTorch's ${pytorchLr[type]}`);
    t.same(optimizers[type]({ lr: 0.5 }), { type, lr: 0.5 }, `${type}: the caller's values pass through`);
  }
  net.dispose();
});

t.test('adamw\'s default weight decay is decoupled 1e-2: one step moves a zero-gradient weight by lr * 1e-2 * w', async (t) => {
  const net = new RecurrentNetwork({ cell: 'rnn_tanh', inputSize: 1, hiddenSize: 1, seed: 1 });
  net.setParam('weight_hh_l0', Float32Array.of(2));
  net.setOptimizer(optimizers.adamw());
  net.zeroGrad();
  net.step();
  const w = net.getParam('weight_hh_l0').data[0];
  t.ok(Math.abs(w - 2 * (1 - 1e-3 * 1e-2)) < 1e-7, `w = ${w}`);
  net.dispose();
});
