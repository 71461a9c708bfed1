/**
 * Reading the file given with `--config`, with errors that name the path and the option.
 */
import { statSync } from "node:fs";
import { CdpoError } from "../errors.js";
import { readConfigFile } from "../train/config.js";

/**
 * Reads the JSON or YAML file of `--config`.
 *
 * @throws CdpoError "FILE" when the path does not exist or is not a file, naming the path and
 *   `--config`; syntax and top-level shape errors of {@link readConfigFile} name the path too.
 */
export function readConfigOption(file: string): Record<string, unknown> {
  let isFile = true;
  try {
    isFile = statSync(file).isFile();
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === "ENOENT" || code === "ENOTDIR") {
      throw new CdpoError(
        "FILE",
        `Config file not found: ${file} (given with --config). Check the path, or leave out ` +
          "--config and pass the settings as options.",
        { cause: error },
      );
    }
    // Other failures (permissions, for example) surface from readConfigFile with the path.
  }
  if (!isFile) {
    throw new CdpoError(
      "FILE",
      `Config file ${file} (given with --config) is not a file: pass a JSON or YAML file`,
    );
  }
  return readConfigFile(file);
}

/** Names the source of a config for validation errors: `config FILE`, or `config` without one. */
export function configSource(file: string | undefined): string {
  return file === undefined ? "config" : `config ${file}`;
}
