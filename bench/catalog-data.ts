/**
 * A shop's click log with a large catalog, for measuring what a model with big vocabularies costs
 * the worker (docs/benchmarks.md, large catalogs): `--items` products each seen at least twice
 * (so every one earns a vocabulary entry under the default minCount of 2), popular ones more
 * often, a quarter as many users, a price and one of 300 categories; click and buy labels from a
 * per-item appeal, the price and a user-item term. Writes DIR/train.csv and DIR/spec.json.
 *
 *   npx tsx bench/catalog-data.ts --items 200000 --out out/bench/catalog-200k
 *   npm run train -- --data out/bench/catalog-200k/train.csv --spec out/bench/catalog-200k/spec.json \
 *     --out out/bench/catalog-200k/model --arch mmoe --epochs 1 && npm run export -- --model out/bench/catalog-200k/model --int8
 */

import { once } from "node:events";
import { createWriteStream, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { Command } from "commander";
import { positiveInt } from "../trainer/cli/run-cli.ts";
import { mulberry32 } from "../trainer/core/rng.ts";

const program = new Command("catalog-data")
  .description("A click log over a large catalog: train.csv and spec.json")
  .requiredOption("--items <n>", "products, each seen at least twice", positiveInt)
  .requiredOption("--out <dir>", "folder to write")
  .option("--seed <n>", "random seed", positiveInt, 1)
  .showHelpAfterError();
const { items, out, seed } = program.parse(process.argv.slice(2), { from: "user" }).opts<{
  items: number;
  out: string;
  seed: number;
}>();

const random = mulberry32(seed);
/** A standard normal draw (Box-Muller). */
const normal = () => Math.sqrt(-2 * Math.log(1 - random())) * Math.cos(2 * Math.PI * random());
const users = Math.max(1000, Math.floor(items / 4));
const appeal = Float64Array.from({ length: items }, normal);

mkdirSync(out, { recursive: true });
const csv = createWriteStream(join(out, "train.csv"));
csv.write("user,item,price,category,click,buy\n");
let chunk = "";
for (let r = 0; r < 3 * items; r++) {
  // Every item twice, then a third pass skewed towards the popular (low-numbered) ones.
  const item = r < 2 * items ? r % items : Math.floor(items * random() ** 2);
  const user = Math.floor(random() * users);
  const price = Math.round(Math.exp(2 + (item % 97) / 30) * 100) / 100;
  const z = appeal[item]! + 0.3 * (((user * 7 + item) % 5) - 2) - 0.2 * Math.log(price);
  const click = random() < 1 / (1 + Math.exp(1 - z)) ? 1 : 0;
  const buy = click && random() < 0.2 ? 1 : 0;
  chunk += `u${user},sku-${String(item).padStart(8, "0")},${price},c${item % 300},${click},${buy}\n`;
  if (chunk.length > 1 << 20) {
    if (!csv.write(chunk)) await once(csv, "drain");
    chunk = "";
  }
}
csv.end(chunk);
await once(csv, "finish");
const spec = {
  format: "csv",
  features: [
    { name: "user", type: "categorical", side: "user" },
    { name: "item", type: "categorical" },
    { name: "price", type: "numeric" },
    { name: "category", type: "categorical" },
  ],
  tasks: [
    { name: "click", type: "binary", column: "click", positive: ["1"] },
    { name: "buy", type: "binary", column: "buy", positive: ["1"] },
  ],
};
writeFileSync(join(out, "spec.json"), `${JSON.stringify(spec, null, 2)}\n`);
console.log(`${3 * items} rows, ${items} items, ${users} users -> ${out}`);
