/** npm run export -- --model DIR */
import { Command } from "commander";
import { exportModelDir } from "../export/export-model.ts";
import { runCli } from "./run-cli.ts";

const program = new Command("export")
  .description("Write DIR/model.onnx and DIR/manifest.json from a trained model directory.")
  .requiredOption("--model <dir>", "model directory written by `npm run train`")
  .showHelpAfterError();

await runCli(async () => {
  const opts = program.parse().opts();
  const { manifest } = await exportModelDir(opts.model);
  const file = manifest.files["model.onnx"]!;
  console.log(
    `exported ${opts.model}/model.onnx: ${file.bytes} bytes, sha256 ${file.sha256.slice(0, 16)}…, id ${manifest.id}`,
  );
});
