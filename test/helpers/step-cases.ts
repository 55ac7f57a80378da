// Recurrent layers for comparing a fused time step with the unfused one: [name, units, batch, layer options]. Every
// cell and gate activation, hidden sizes that are no multiple of any SIMD width or unit block, batch 1 (the few-row
// paths) up to odd batches, stacked bidirectional layers. The name's first word is the cell.
export const STEP_CASES: Array<[string, number, number, Record<string, unknown>]> = [
  ['lstm', 70, 7, {}],
  ['lstm hard sigmoid', 45, 9, { recurrentActivation: 'hardSigmoid' }],
  ['gru reset-after', 33, 5, {}],
  ['gru reset-before', 33, 6, { resetAfter: false }],
  ['rnn tanh', 40, 11, {}],
  ['rnn relu', 97, 6, { activation: 'relu' }],
  ['lstm batch 1', 50, 1, {}],
  ['lstm 2x bidirectional', 100, 13, { numLayers: 2, bidirectional: true }],
  ['gru 512', 512, 17, {}],
];
