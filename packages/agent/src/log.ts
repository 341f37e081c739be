/** One structured log line per event worth knowing: JSON, to stderr by default. */
export type Logger = (event: string, fields: Record<string, unknown>) => void;

export function jsonLogger(
  role: string,
  write: (line: string) => void = (l) => process.stderr.write(l),
): Logger {
  return (event, fields) => {
    write(`${JSON.stringify({ time: new Date().toISOString(), role, event, ...fields })}\n`);
  };
}

export const silentLogger: Logger = () => {};
