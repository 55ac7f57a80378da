/** A dense float tensor: row-major data and its shape. */
export interface Tensor {
  data: Float32Array;
  shape: number[];
}

/** Integer data (token ids, class ids) with its shape. */
export interface IntTensor {
  data: Int32Array | number[];
  shape: number[];
}

export function tensor(data: Float32Array | ArrayLike<number>, shape: number[]): Tensor {
  const f = data instanceof Float32Array ? data : Float32Array.from(data);
  return { data: f, shape: [...shape] };
}

export function shapeSize(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}
