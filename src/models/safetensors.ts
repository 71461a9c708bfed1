/**
 * The safetensors format: an 8-byte little-endian header length N, N bytes of JSON, then the
 * tensors' raw little-endian bytes.
 *
 * The header maps each tensor name to `{dtype, shape, data_offsets: [begin, end]}` (offsets into
 * the data section), plus an optional `__metadata__` object of strings. Reading takes one tensor
 * at a time from the file, so a model never needs twice its size in memory.
 */
import { randomBytes } from "node:crypto";
import { promises as fs } from "node:fs";
import path from "node:path";
import { CdpoError } from "../errors.js";
import type { Device, DType, Tensor } from "../tensor/index.js";
import * as torch from "../tensor/index.js";

export type SafetensorsDtype =
  | "F64"
  | "F32"
  | "F16"
  | "BF16"
  | "I64"
  | "I32"
  | "I16"
  | "I8"
  | "U8"
  | "BOOL";

const TO_TORCH: Record<SafetensorsDtype, DType> = {
  F64: "float64",
  F32: "float32",
  F16: "float16",
  BF16: "bfloat16",
  I64: "int64",
  I32: "int32",
  I16: "int16",
  I8: "int8",
  U8: "uint8",
  BOOL: "bool",
};

const FROM_TORCH = Object.fromEntries(
  Object.entries(TO_TORCH).map(([st, dtype]) => [dtype, st]),
) as Record<DType, SafetensorsDtype>;

const ELEMENT_BYTES: Record<SafetensorsDtype, number> = {
  F64: 8,
  F32: 4,
  F16: 2,
  BF16: 2,
  I64: 8,
  I32: 4,
  I16: 2,
  I8: 1,
  U8: 1,
  BOOL: 1,
};

/** safetensors itself rejects headers over 100 MB. */
const MAX_HEADER_BYTES = 100_000_000;

export interface TensorInfo {
  name: string;
  dtype: SafetensorsDtype;
  shape: number[];
  /** Absolute byte range of the tensor's data in the file. */
  begin: number;
  end: number;
}

export interface SafetensorsHeader {
  path: string;
  tensors: Map<string, TensorInfo>;
  metadata: Record<string, string>;
}

function invalid(file: string, reason: string): CdpoError {
  return new CdpoError("FILE", `${file} is not a valid safetensors file: ${reason}`);
}

async function readExactly(
  handle: fs.FileHandle,
  length: number,
  position: number,
): Promise<Buffer> {
  const buffer = Buffer.allocUnsafe(length);
  let filled = 0;
  while (filled < length) {
    const { bytesRead } = await handle.read(buffer, filled, length - filled, position + filled);
    if (bytesRead === 0) break;
    filled += bytesRead;
  }
  return filled < length ? buffer.subarray(0, filled) : buffer;
}

async function openForReading(file: string): Promise<fs.FileHandle> {
  try {
    return await fs.open(file, "r");
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") {
      throw new CdpoError("FILE", `safetensors file not found: ${file}`, { cause: error });
    }
    throw new CdpoError("FILE", `Failed to open ${file}: ${(error as Error).message}`, {
      cause: error,
    });
  }
}

/** Parses and validates the header of an open file, checking every range against its size. */
async function readHeaderFrom(handle: fs.FileHandle, file: string): Promise<SafetensorsHeader> {
  // header length, then the JSON header
  const { size } = await handle.stat();
  if (size < 8) {
    throw new CdpoError(
      "FILE",
      `${file} is truncated: ${size} bytes, less than the 8-byte header length`,
    );
  }
  const lengthBytes = await readExactly(handle, 8, 0);
  const headerLength = Number(lengthBytes.readBigUInt64LE(0));
  if (headerLength > MAX_HEADER_BYTES) {
    throw invalid(file, `header length ${headerLength} exceeds ${MAX_HEADER_BYTES} bytes`);
  }
  if (8 + headerLength > size) {
    throw new CdpoError(
      "FILE",
      `${file} is truncated: the header needs ${8 + headerLength} bytes but the file has ${size}`,
    );
  }
  let json: unknown;
  try {
    json = JSON.parse((await readExactly(handle, headerLength, 8)).toString("utf8"));
  } catch (error) {
    throw invalid(file, `the header is not JSON (${(error as Error).message})`);
  }
  if (json === null || typeof json !== "object" || Array.isArray(json)) {
    throw invalid(file, "the header is not a JSON object");
  }

  // one entry per tensor, plus the optional metadata
  const dataStart = 8 + headerLength;
  const tensors = new Map<string, TensorInfo>();
  let metadata: Record<string, string> = {};
  for (const [name, entry] of Object.entries(json as Record<string, unknown>)) {
    if (name === "__metadata__") {
      metadata = (entry ?? {}) as Record<string, string>;
    } else {
      tensors.set(name, parseEntry(file, name, entry, dataStart, size));
    }
  }
  return { path: file, tensors, metadata };
}

/** Validates one tensor entry of a header against the file size. */
function parseEntry(
  file: string,
  name: string,
  entry: unknown,
  dataStart: number,
  size: number,
): TensorInfo {
  const { dtype, shape, data_offsets: offsets } = (entry ?? {}) as Record<string, unknown>;
  if (typeof dtype !== "string" || !(dtype in ELEMENT_BYTES)) {
    throw invalid(file, `tensor ${name} has unsupported dtype ${JSON.stringify(dtype)}`);
  }
  if (!Array.isArray(shape) || !shape.every((s) => Number.isInteger(s) && s >= 0)) {
    throw invalid(file, `tensor ${name} has an invalid shape ${JSON.stringify(shape)}`);
  }
  if (
    !Array.isArray(offsets) ||
    offsets.length !== 2 ||
    !offsets.every((o) => Number.isInteger(o) && o >= 0) ||
    offsets[1] < offsets[0]
  ) {
    throw invalid(file, `tensor ${name} has invalid data_offsets ${JSON.stringify(offsets)}`);
  }

  const stDtype = dtype as SafetensorsDtype;
  const numel = (shape as number[]).reduce((a, b) => a * b, 1);
  const expected = numel * ELEMENT_BYTES[stDtype];
  const [begin, end] = offsets as [number, number];
  if (end - begin !== expected) {
    throw invalid(
      file,
      `tensor ${name} (${stDtype} [${shape.join(", ")}]) needs ${expected} bytes but data_offsets span ${end - begin}`,
    );
  }
  if (dataStart + end > size) {
    throw new CdpoError(
      "FILE",
      `${file} is truncated: tensor ${name} needs bytes up to ${dataStart + end} but the file has ${size}`,
    );
  }
  return {
    name,
    dtype: stDtype,
    shape: shape as number[],
    begin: dataStart + begin,
    end: dataStart + end,
  };
}

/** Reads and validates a file's header (names, dtypes, shapes, byte ranges). */
export async function readSafetensorsHeader(file: string): Promise<SafetensorsHeader> {
  const handle = await openForReading(file);
  try {
    return await readHeaderFrom(handle, file);
  } finally {
    await handle.close();
  }
}

/** An open safetensors file that reads tensors one at a time. Close it when done. */
export class SafetensorsReader {
  private constructor(
    readonly header: SafetensorsHeader,
    readonly handle: fs.FileHandle,
  ) {}

  static async open(file: string): Promise<SafetensorsReader> {
    const handle = await openForReading(file);
    try {
      return new SafetensorsReader(await readHeaderFrom(handle, file), handle);
    } catch (error) {
      await handle.close();
      throw error;
    }
  }

  get names(): string[] {
    return [...this.header.tensors.keys()];
  }

  /** Reads one tensor in its stored dtype (on `device`, default the CPU). */
  async read(name: string, device: Device = "cpu"): Promise<Tensor> {
    const info = this.header.tensors.get(name);
    if (info === undefined) {
      throw new CdpoError("MODEL", `tensor ${name} is missing from ${this.header.path}`);
    }
    const bytes = await readExactly(this.handle, info.end - info.begin, info.begin);
    if (bytes.length < info.end - info.begin) {
      throw new CdpoError(
        "FILE",
        `${this.header.path} is truncated: tensor ${name} needs bytes up to ${info.end} but reading stopped at ${info.begin + bytes.length}`,
      );
    }
    return torch.fromBytes(bytes, TO_TORCH[info.dtype], info.shape, { device });
  }

  async close(): Promise<void> {
    await this.handle.close();
  }
}

/** Reads every tensor of a file into a name → tensor map (for small files and tests). */
export async function loadSafetensors(
  file: string,
  device: Device = "cpu",
): Promise<Map<string, Tensor>> {
  const reader = await SafetensorsReader.open(file);
  const result = new Map<string, Tensor>();
  try {
    for (const name of reader.names) result.set(name, await reader.read(name, device));
  } catch (error) {
    torch.dispose([...result.values()]);
    throw error;
  } finally {
    await reader.close();
  }
  return result;
}

/** Returns the bytes per element of a torch dtype. */
export function dtypeBytes(dtype: DType): number {
  return ELEMENT_BYTES[FROM_TORCH[dtype]];
}

/** Returns the safetensors dtype name of a torch dtype. */
export function safetensorsDtype(dtype: DType): SafetensorsDtype {
  return FROM_TORCH[dtype];
}

/** Returns a temporary name in the same folder as `file`, for write-then-rename. */
export function temporaryPath(file: string): string {
  return path.join(
    path.dirname(file),
    `.${path.basename(file)}.${process.pid}.${randomBytes(4).toString("hex")}.tmp`,
  );
}

/**
 * Writes tensors as one safetensors file, atomically: the data goes to a temporary file in the same
 * folder, which is synced and then renamed over `file`. Tensors are written in the given order,
 * one at a time. `metadata` defaults to `{format: "pt"}`, as transformers writes.
 */
export async function saveSafetensors(
  file: string,
  tensors: Iterable<[string, Tensor]>,
  metadata: Record<string, string> = { format: "pt" },
): Promise<void> {
  const entries = [...tensors];
  const header: Record<string, unknown> = { __metadata__: metadata };
  let offset = 0;
  for (const [name, tensor] of entries) {
    const bytes = tensor.numel * ELEMENT_BYTES[safetensorsDtype(tensor.dtype)];
    header[name] = {
      dtype: safetensorsDtype(tensor.dtype),
      shape: tensor.shape,
      data_offsets: [offset, offset + bytes],
    };
    offset += bytes;
  }
  // The header is padded with spaces to a multiple of 8 bytes so the data starts aligned.
  let headerText = JSON.stringify(header);
  const padding = (8 - (Buffer.byteLength(headerText) % 8)) % 8;
  headerText += " ".repeat(padding);
  const headerBytes = Buffer.from(headerText, "utf8");
  const lengthBytes = Buffer.alloc(8);
  lengthBytes.writeBigUInt64LE(BigInt(headerBytes.length));

  await fs.mkdir(path.dirname(file), { recursive: true });
  const temp = temporaryPath(file);
  const handle = await fs.open(temp, "wx");
  try {
    await handle.write(lengthBytes);
    await handle.write(headerBytes);
    for (const [, tensor] of entries) {
      const bytes = tensor.toBytes();
      await handle.write(bytes);
    }
    await handle.sync();
  } catch (error) {
    await handle.close();
    await fs.rm(temp, { force: true });
    throw error;
  }
  await handle.close();
  try {
    await fs.rename(temp, file);
  } catch (error) {
    await fs.rm(temp, { force: true });
    throw error;
  }
}
