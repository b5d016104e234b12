// Renders every template of cases.json with Hugging Face's own @huggingface/jinja (the version package.json
// pins) and writes expected/<template>.json, which Kiln's tests compare with. Run: npm ci && npm run render
// (or `node render.mjs --check` to compare instead of write: exit 1 when a file differs).
import { Template } from "@huggingface/jinja";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";

const here = new URL(".", import.meta.url);
const check = process.argv.includes("--check");
const cases = JSON.parse(readFileSync(new URL("cases.json", here), "utf8"));

let differ = 0;
mkdirSync(new URL("expected/", here), { recursive: true });
for (const [name, conversations] of Object.entries(cases.templates)) {
  const source = readFileSync(new URL(`templates/${name}.jinja`, here), "utf8");
  const template = new Template(source);
  const results = [];
  for (const conversation of conversations) {
    const { messages, variables = {} } = cases.conversations[conversation];
    for (const addGenerationPrompt of [true, false]) {
      const result = { conversation, add_generation_prompt: addGenerationPrompt };
      try {
        result.output = template.render({
          tools: null,
          documents: null,
          bos_token: cases.bos_token,
          eos_token: cases.eos_token,
          ...variables,
          messages,
          add_generation_prompt: addGenerationPrompt,
        });
      } catch (e) {
        // raise_exception('...') throws an Error with the template's message, which the template then holds
        // word for word (every raise here is of a literal); any other error fails the run.
        if (!source.includes(`raise_exception('${e.message}')`) && !source.includes(`raise_exception("${e.message}")`))
          throw new Error(`${name}, ${conversation}: ${e.message}`);
        result.raised = e.message;
      }
      results.push(result);
    }
  }
  const file = new URL(`expected/${name}.json`, here);
  const text = JSON.stringify(results, null, 2) + "\n";
  if (!check) writeFileSync(file, text);
  else if (readFileSync(file, "utf8") !== text) {
    console.error(`expected/${name}.json differs from @huggingface/jinja's output`);
    differ++;
  }
}
process.exit(differ > 0 ? 1 : 0);
