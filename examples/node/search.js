// Search recsys from Node.js, straight from the .proto files (no generated code):
//   npm ci --prefix examples/node
//   node examples/node/search.js --index localhost:50052 "small folding computer desk" 5
// Prints the hits as JSON. Plaintext and token-less, as the services run by default on loopback.
"use strict";
const path = require("node:path");
const { parseArgs } = require("node:util");
const grpc = require("@grpc/grpc-js");
const protoLoader = require("@grpc/proto-loader");

const { values, positionals } = parseArgs({
  options: { index: { type: "string", default: process.env.RECSYS_INDEX || "localhost:50052" } },
  allowPositionals: true,
});
const [query, k = "5"] = positionals;
if (!query) {
  console.error("usage: node search.js [--index HOST:PORT] QUERY [K]");
  process.exit(2);
}

// keepCase: the .proto's field names (product_id); longs: uint64 as numbers; enums as names.
const definition = protoLoader.loadSync("recsys/v1/index.proto", {
  includeDirs: [path.join(__dirname, "..", "..", "protos")],
  keepCase: true, longs: Number, enums: String, defaults: true,
});
const { Index } = grpc.loadPackageDefinition(definition).recsys.v1;
const index = new Index(values.index, grpc.credentials.createInsecure());

const request = { query, k: Number(k), mode: "MODE_SEMANTIC" };
index.Search(request, { deadline: Date.now() + 10_000 }, (err, response) => {
  index.close();
  if (err) {
    console.error(`search failed: ${grpc.status[err.code]}: ${err.details}`);
    process.exit(1);
  }
  const hits = response.hits.map(({ rank, score, product }) =>
    ({ rank, score, id: product.id, title: product.title, price: product.price }));
  console.log(JSON.stringify({ hits, total_us: response.timing.total_us }, null, 2));
});
