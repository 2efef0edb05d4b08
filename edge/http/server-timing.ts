/** Collects named phase durations for the Server-Timing response header. */

export class ServerTiming {
  private readonly phases: string[] = [];
  private last = performance.now();

  /** Records the time since the previous mark (or construction) under `name`. */
  mark(name: string): void {
    const now = performance.now();
    this.phases.push(`${name};dur=${(now - this.last).toFixed(2)}`);
    this.last = now;
  }

  header(): string {
    return this.phases.join(", ");
  }
}
