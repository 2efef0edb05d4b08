/**
 * Worker entry: serves the model bundled from fixtures/model/. To serve another model directory
 * with `wrangler dev`, see scripts/dev-config.ts (it generates an entry like this one).
 */
import manifest from "../fixtures/model/manifest.json";
import model from "../fixtures/model/model.onnx";
import { startApp } from "./app.ts";

export default await startApp({ manifest, model });
