// The typed functional API over a native recurrent network: parameters by PyTorch name, forward, backward, loss,
// optimizer. Arithmetic happens natively; this class validates nothing that the core does not already check, and
// only adds readable types.
import { native, type NativeNetwork, type NativeOptimizerConfig } from './native';
import type { Tensor } from './tensor';
import type {
  RecurrentSpec, SequenceBatch, ForwardResult, OutputGradient, InputGradient, LossTarget,
} from './network-types';

export type {
  CellType, GateActivation, RecurrentSpec, SequenceBatch, ForwardResult, OutputGradient, InputGradient, LossTarget,
} from './network-types';

export type OptimizerOptions = NativeOptimizerConfig;

export interface TrainStepResult {
  loss: number;
  /** The global gradient norm before clipping. */
  gradNorm: number;
  /** Output positions the loss counted (see LossTarget). */
  counted: number;
  /** Cross-entropy: of the counted positions, those whose largest output is at the target class. */
  correct?: number;
}

/**
 * A stack of recurrent layers (optionally with a dense head) backed by native memory. Call `dispose()` when done,
 * or let the garbage collector free it. Promise-returning calls on one network run one after another, in call order
 * (the native handle queues them), each on a copy of its arguments taken when it is called.
 */
export class RecurrentNetwork {
  readonly #native: NativeNetwork;

  constructor(spec: RecurrentSpec) {
    this.#native = new native.Network(spec);
  }

  /** The normalized spec. */
  get spec(): Required<Pick<RecurrentSpec, 'cell' | 'hiddenSize' | 'numLayers' | 'bidirectional' | 'headSize'>> &
    RecurrentSpec {
    return this.#native.spec() as ReturnType<NativeNetwork['spec']>;
  }

  get disposed(): boolean {
    return this.#native.isDisposed();
  }

  /** Free the native memory now. Later calls fail with ERR_RNNKIT_DISPOSED. */
  dispose(): void {
    this.#native.dispose();
  }

  paramNames(): string[] {
    return this.#native.paramNames();
  }

  paramShape(name: string): number[] {
    return this.#native.paramShape(name);
  }

  getParam(name: string): Tensor {
    return { data: this.#native.getParam(name), shape: this.#native.paramShape(name) };
  }

  setParam(name: string, value: Float32Array | Tensor): void {
    // A Tensor gives its data; anything else (a Float64Array, an Array, null) goes to the native check as it is, so
    // that the error names what was passed instead of "got undefined".
    const isTensor = typeof value === 'object' && value !== null && !ArrayBuffer.isView(value) && !Array.isArray(value);
    this.#native.setParam(name, isTensor ? (value as Tensor).data : (value as Float32Array));
  }

  getParams(): Record<string, Tensor> {
    const out: Record<string, Tensor> = {};
    for (const name of this.paramNames()) out[name] = this.getParam(name);
    return out;
  }

  setParams(params: Record<string, Float32Array | Tensor>): void {
    for (const [name, value] of Object.entries(params)) this.setParam(name, value);
  }

  getGrad(name: string): Tensor {
    return { data: this.#native.getGrad(name), shape: this.#native.paramShape(name) };
  }

  zeroGrad(): void {
    this.#native.zeroGrad();
  }

  gradNorm(): number {
    return this.#native.gradNorm();
  }

  /** Scale the gradients to a global L2 norm of at most maxNorm; returns the norm before. */
  clipGradNorm(maxNorm: number): number {
    return this.#native.clipGradNorm(maxNorm);
  }

  setOptimizer(options: OptimizerOptions): void {
    this.#native.setOptimizer(options);
  }

  optimizerInfo(): { type: string; lr: number; steps: number; stateSlots: string[] } | null {
    return this.#native.optimizerInfo();
  }

  /** Apply the optimizer to the accumulated gradients. */
  step(): void {
    this.#native.step();
  }

  getOptimizerState(slot: string): Float32Array {
    return this.#native.getOptimizerState(slot);
  }

  setOptimizerState(slot: string, value: Float32Array | number): void {
    this.#native.setOptimizerState(slot, value);
  }

  /** Run the network over a batch. With `train: true`, keeps what backward needs. */
  forward(input: SequenceBatch, options?: { train?: boolean }): Promise<ForwardResult> {
    return this.#native.forward(input, options);
  }

  forwardSync(input: SequenceBatch, options?: { train?: boolean }): ForwardResult {
    return this.#native.forwardSync(input, options);
  }

  /** Backpropagate upstream gradients through the last training forward; parameter gradients accumulate. */
  backward(grad: OutputGradient): Promise<InputGradient> {
    return this.#native.backward(grad);
  }

  backwardSync(grad: OutputGradient): InputGradient {
    return this.#native.backwardSync(grad);
  }

  /** The loss of the last training forward's output, backpropagated (gradients accumulate). */
  loss(target: LossTarget): Promise<InputGradient & { loss: number }> {
    return this.#native.loss(target);
  }

  lossSync(target: LossTarget): InputGradient & { loss: number } {
    return this.#native.lossSync(target);
  }

  /** zeroGrad, forward, loss, backward, clip (when clipNorm > 0) and optimizer step, as one native call. */
  trainStep(input: SequenceBatch, target: LossTarget, options?: { clipNorm?: number }): Promise<TrainStepResult> {
    return this.#native.trainStep(input, target, options);
  }

  trainStepSync(input: SequenceBatch, target: LossTarget, options?: { clipNorm?: number }): TrainStepResult {
    return this.#native.trainStepSync(input, target, options);
  }

  /** Bytes of native memory held by parameters, gradients and optimizer state. */
  memoryBytes(): number {
    return this.#native.memoryBytes();
  }
}
