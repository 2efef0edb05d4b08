/** A per-epoch progress bar with the running loss (cli-progress), on stderr and only on a terminal. */
import { SingleBar } from "cli-progress";

export interface EpochProgress {
  update(progress: { epoch: number; done: number; total: number; loss: number }): void;
  /** Clears the bar before the epoch's summary line is printed. */
  end(): void;
}

export function epochProgress(stream: NodeJS.WriteStream = process.stderr): EpochProgress {
  if (!stream.isTTY) return { update: () => {}, end: () => {} };
  let bar: SingleBar | undefined;
  let epoch = 0;
  return {
    update(p) {
      if (!bar || p.epoch !== epoch) {
        bar?.stop();
        epoch = p.epoch;
        bar = new SingleBar({
          stream,
          format: "epoch {epoch} [{bar}] {value}/{total} batches  loss {loss}  {eta_formatted} left",
          barsize: 30,
          clearOnComplete: true,
          hideCursor: true,
        });
        bar.start(p.total, 0, { epoch: p.epoch, loss: "-" });
      }
      bar.update(p.done, { loss: p.loss.toFixed(4) });
    },
    end() {
      bar?.stop();
      bar = undefined;
    },
  };
}
