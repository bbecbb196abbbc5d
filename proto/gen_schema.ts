/**
 * Regenerates `proto/schema.ts` from `proto/chorus.proto`, so the schema ships inside the module
 * graph (no file reads at run time, which Deno Deploy would not allow for a non-bundled file).
 *
 * Run after editing the .proto: `deno run --allow-read --allow-write proto/gen_schema.ts`.
 * `tests/proto/codec_test.ts` fails while the two differ.
 * @module
 */

/**
 * Renders the TypeScript module that embeds `protoText` as the `CHORUS_PROTO` constant.
 *
 * @param protoText The exact contents of `chorus.proto`.
 * @returns The source of `schema.ts`.
 */
export function renderSchemaModule(protoText: string): string {
  // The literal opens with a line continuation (no character in the value) so that the first
  // line stays short and `deno fmt` leaves the generated file as it is.
  const literal = protoText.replaceAll("\\", "\\\\").replaceAll("`", "\\`").replaceAll(
    "${",
    "\\${",
  );
  return `// Generated from proto/chorus.proto by proto/gen_schema.ts. Do not edit.
/**
 * The text of \`proto/chorus.proto\`, embedded so the schema loads without reading files (Deno Deploy).
 * @module
 */

/** The Chorus protobuf schema, character for character the file \`proto/chorus.proto\`. */
export const CHORUS_PROTO: string = \`\\
${literal}\`;
`;
}

if (import.meta.main) {
  const protoText = await Deno.readTextFile(new URL("./chorus.proto", import.meta.url));
  await Deno.writeTextFile(new URL("./schema.ts", import.meta.url), renderSchemaModule(protoText));
}
