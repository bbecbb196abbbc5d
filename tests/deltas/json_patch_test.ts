import assert from "node:assert/strict";
import { ChorusError } from "../../errors.ts";
import {
  applyJsonPatch,
  diffJsonPatch,
  type JsonObject,
  type JsonPatch,
  type JsonPatchOperation,
} from "../../deltas/mod.ts";

function assertChorusError(fn: () => unknown, code: string, status: number): ChorusError {
  let caught: unknown;
  try {
    fn();
  } catch (error) {
    caught = error;
  }
  assert.ok(caught instanceof ChorusError, `expected a ChorusError, got ${caught}`);
  assert.equal(caught.code, code);
  assert.equal(caught.status, status);
  return caught;
}

/** Parses JSON text so `__proto__` keys become own properties, as they do on the wire. */
function json<T>(text: string): T {
  return JSON.parse(text);
}

// RFC 6902 Appendix A: [title, document, patch, expected result or "error"].
const APPENDIX_A: [string, string, string, string][] = [
  [
    "A.1 adding an object member",
    `{"foo":"bar"}`,
    `[{"op":"add","path":"/baz","value":"qux"}]`,
    `{"baz":"qux","foo":"bar"}`,
  ],
  [
    "A.2 adding an array element",
    `{"foo":["bar","baz"]}`,
    `[{"op":"add","path":"/foo/1","value":"qux"}]`,
    `{"foo":["bar","qux","baz"]}`,
  ],
  [
    "A.3 removing an object member",
    `{"baz":"qux","foo":"bar"}`,
    `[{"op":"remove","path":"/baz"}]`,
    `{"foo":"bar"}`,
  ],
  [
    "A.4 removing an array element",
    `{"foo":["bar","qux","baz"]}`,
    `[{"op":"remove","path":"/foo/1"}]`,
    `{"foo":["bar","baz"]}`,
  ],
  [
    "A.5 replacing a value",
    `{"baz":"qux","foo":"bar"}`,
    `[{"op":"replace","path":"/baz","value":"boo"}]`,
    `{"baz":"boo","foo":"bar"}`,
  ],
  [
    "A.6 moving a value",
    `{"foo":{"bar":"baz","waldo":"fred"},"qux":{"corge":"grault"}}`,
    `[{"op":"move","from":"/foo/waldo","path":"/qux/thud"}]`,
    `{"foo":{"bar":"baz"},"qux":{"corge":"grault","thud":"fred"}}`,
  ],
  [
    "A.7 moving an array element",
    `{"foo":["all","grass","cows","eat"]}`,
    `[{"op":"move","from":"/foo/1","path":"/foo/3"}]`,
    `{"foo":["all","cows","eat","grass"]}`,
  ],
  [
    "A.8 testing a value: success",
    `{"baz":"qux","foo":["a",2,"c"]}`,
    `[{"op":"test","path":"/baz","value":"qux"},{"op":"test","path":"/foo/1","value":2}]`,
    `{"baz":"qux","foo":["a",2,"c"]}`,
  ],
  [
    "A.9 testing a value: error",
    `{"baz":"qux"}`,
    `[{"op":"test","path":"/baz","value":"bar"}]`,
    "error",
  ],
  [
    "A.10 adding a nested member object",
    `{"foo":"bar"}`,
    `[{"op":"add","path":"/child","value":{"grandchild":{}}}]`,
    `{"foo":"bar","child":{"grandchild":{}}}`,
  ],
  [
    "A.11 ignoring unrecognized elements",
    `{"foo":"bar"}`,
    `[{"op":"add","path":"/baz","value":"qux","xyz":123}]`,
    `{"foo":"bar","baz":"qux"}`,
  ],
  [
    "A.12 adding to a nonexistent target",
    `{"foo":"bar"}`,
    `[{"op":"add","path":"/baz/bat","value":"qux"}]`,
    "error",
  ],
  [
    "A.13 invalid JSON patch document (last op member wins)",
    `{"foo":"bar"}`,
    `[{"op":"add","path":"/baz","value":"qux","op":"remove"}]`,
    "error",
  ],
  [
    "A.14 ~ escape ordering",
    `{"/":9,"~1":10}`,
    `[{"op":"test","path":"/~01","value":10}]`,
    `{"/":9,"~1":10}`,
  ],
  [
    "A.15 comparing strings and numbers",
    `{"/":9,"~1":10}`,
    `[{"op":"test","path":"/~01","value":"10"}]`,
    "error",
  ],
  [
    "A.16 adding an array value",
    `{"foo":["bar"]}`,
    `[{"op":"add","path":"/foo/-","value":["abc","def"]}]`,
    `{"foo":["bar",["abc","def"]]}`,
  ],
];

for (const [title, docText, patchText, expected] of APPENDIX_A) {
  Deno.test(`applyJsonPatch: RFC 6902 ${title}`, () => {
    const doc = json<JsonObject>(docText);
    const patch = json<JsonPatch>(patchText);
    if (expected === "error") {
      const error = assertChorusError(() => applyJsonPatch(doc, patch), "conflict", 409);
      assert.equal(error.details?.op_index, patch.length - 1);
      assert.deepEqual(error.details?.op, patch[patch.length - 1]);
    } else {
      assert.deepEqual(applyJsonPatch(doc, patch), json(expected));
    }
    assert.deepEqual(doc, json(docText), "the input is not mutated");
  });
}

Deno.test("applyJsonPatch is all or nothing and reports the failing op's index", () => {
  const doc = { a: 1, list: [1, 2] };
  const error = assertChorusError(
    () =>
      applyJsonPatch(doc, [
        { op: "replace", path: "/a", value: 2 },
        { op: "add", path: "/list/-", value: 3 },
        { op: "remove", path: "/nope" },
      ]),
    "conflict",
    409,
  );
  assert.equal(error.details?.op_index, 2);
  assert.deepEqual(error.details?.op, { op: "remove", path: "/nope" });
  assert.match(error.message, /^Cannot apply patch: /);
  assert.deepEqual(doc, { a: 1, list: [1, 2] });
});

Deno.test("ops that do not apply are conflict (409)", () => {
  const doc = { a: { b: 1 }, list: [0, 1, 2], s: "str" };
  const misfits: JsonPatchOperation[] = [
    { op: "remove", path: "/missing" },
    { op: "replace", path: "/missing", value: 1 },
    { op: "add", path: "/missing/x", value: 1 },
    { op: "add", path: "/s/x", value: 1 },
    { op: "add", path: "/list/4", value: 1 },
    { op: "add", path: "/list/01", value: 1 },
    { op: "add", path: "/list/x", value: 1 },
    { op: "remove", path: "/list/3" },
    { op: "remove", path: "/list/-" },
    { op: "replace", path: "/list/-", value: 1 },
    { op: "remove", path: "" },
    { op: "move", from: "/a", path: "/a/b/c" },
    { op: "move", from: "/missing", path: "/x" },
    { op: "copy", from: "/missing", path: "/x" },
    { op: "test", path: "/list/-", value: 1 },
    { op: "test", path: "/a", value: { b: 2 } },
    { op: "remove", path: "/constructor" },
    { op: "test", path: "/toString", value: null },
  ];
  for (const op of misfits) {
    const error = assertChorusError(() => applyJsonPatch(doc, [op]), "conflict", 409);
    assert.equal(error.details?.op_index, 0, JSON.stringify(op));
  }
});

Deno.test("malformed patches and ops are invalid_request (400)", () => {
  const doc = { a: 1 };
  const bad: unknown[] = [
    { op: "add", path: "/a", value: 1 },
    [null],
    [{ op: "bogus", path: "/a" }],
    [{ path: "/a", value: 1 }],
    [{ op: "add", value: 1 }],
    [{ op: "add", path: "a", value: 1 }],
    [{ op: "add", path: "/~2", value: 1 }],
    [{ op: "add", path: "/b" }],
    [{ op: "test", path: "/a" }],
    [{ op: "move", path: "/b" }],
    [{ op: "copy", from: 5, path: "/b" }],
    [{ op: "replace", path: "", value: [1] }],
    [{ op: "add", path: "", value: "scalar" }],
  ];
  for (const patch of bad) {
    assertChorusError(() => applyJsonPatch(doc, patch as JsonPatch), "invalid_request", 400);
  }
});

Deno.test("whole-document ops: replace, add and move on the root", () => {
  assert.deepEqual(applyJsonPatch({ a: 1 }, [{ op: "replace", path: "", value: { b: 2 } }]), {
    b: 2,
  });
  assert.deepEqual(applyJsonPatch({ a: 1 }, [{ op: "add", path: "", value: {} }]), {});
  assert.deepEqual(applyJsonPatch({ a: 1 }, [{ op: "move", from: "", path: "" }]), { a: 1 });
  assert.deepEqual(applyJsonPatch({ a: 1 }, [{ op: "test", path: "", value: { a: 1 } }]), {
    a: 1,
  });
});

Deno.test("move and copy follow RFC semantics; copies are independent", () => {
  assert.deepEqual(
    applyJsonPatch({ a: { x: [1] } }, [
      { op: "copy", from: "/a", path: "/b" },
      { op: "add", path: "/b/x/-", value: 2 },
      { op: "move", from: "/a/x", path: "/c" },
    ]),
    { a: {}, b: { x: [1, 2] }, c: [1] },
  );
  assert.deepEqual(
    applyJsonPatch({ l: [1, 2, 3] }, [{ op: "move", from: "/l/0", path: "/l/-" }]),
    { l: [2, 3, 1] },
  );
  const value = { deep: [1] };
  const result = applyJsonPatch({}, [{ op: "add", path: "/v", value }]);
  (result.v as { deep: number[] }).deep.push(2);
  assert.deepEqual(value, { deep: [1] }, "values in ops are copied, not shared");
});

Deno.test("__proto__ paths are own keys and never pollute prototypes", () => {
  const result = applyJsonPatch({}, [
    { op: "add", path: "/__proto__", value: { polluted: true } },
    { op: "add", path: "/__proto__/x", value: 1 },
  ]);
  assert.ok(Object.hasOwn(result, "__proto__"));
  assert.equal(Object.getPrototypeOf(result), Object.prototype);
  assert.equal(({} as Record<string, unknown>).polluted, undefined);
  assert.deepEqual(result, json(`{"__proto__": {"polluted": true, "x": 1}}`));
  assertChorusError(
    () => applyJsonPatch({}, [{ op: "add", path: "/__proto__/polluted", value: 1 }]),
    "conflict",
    409,
  );
  const doc = json<JsonObject>(`{"__proto__": {"a": 1}}`);
  assert.deepEqual(applyJsonPatch(doc, [{ op: "remove", path: "/__proto__" }]), {});
  assert.deepEqual(diffJsonPatch({}, doc), [{ op: "add", path: "/__proto__", value: { a: 1 } }]);
});

Deno.test("diffJsonPatch escapes ~ and / in pointers (RFC 6901)", () => {
  const from = json<JsonObject>(`{"a/b": 1, "m~n": {"": 1}, "~1": 0}`);
  const to = json<JsonObject>(`{"a/b": 2, "m~n": {"": 2}, "/~": 3}`);
  const ops = diffJsonPatch(from, to);
  assert.deepEqual(ops, [
    { op: "remove", path: "/~01" },
    { op: "replace", path: "/a~1b", value: 2 },
    { op: "replace", path: "/m~0n/", value: 2 },
    { op: "add", path: "/~1~0", value: 3 },
  ]);
  assert.deepEqual(applyJsonPatch(from, ops), to);
});

Deno.test("diffJsonPatch recurses into objects and emits small array edits", () => {
  const cases: [JsonObject, JsonObject, JsonPatch][] = [
    [{ a: { b: 1, c: 2 } }, { a: { b: 1, c: 3 } }, [{ op: "replace", path: "/a/c", value: 3 }]],
    [{ l: [1, 2] }, { l: [1, 2, 3, 4] }, [
      { op: "add", path: "/l/2", value: 3 },
      { op: "add", path: "/l/3", value: 4 },
    ]],
    [{ l: [1, 2, 3, 4] }, { l: [1, 4] }, [
      { op: "remove", path: "/l/2" },
      { op: "remove", path: "/l/1" },
    ]],
    [{ l: [1, 3] }, { l: [1, 2, 3] }, [{ op: "add", path: "/l/1", value: 2 }]],
    [{ l: [{ x: 1 }, 2] }, { l: [{ x: 2 }, 2] }, [{ op: "replace", path: "/l/0/x", value: 2 }]],
    [{ l: [1, 2, 3] }, { l: [4, 5] }, [{ op: "replace", path: "/l", value: [4, 5] }]],
    [{ a: [1] }, { a: { 0: 1 } }, [{ op: "replace", path: "/a", value: { 0: 1 } }]],
    [{ a: 1 }, { a: 1 }, []],
  ];
  for (const [from, to, expected] of cases) {
    const ops = diffJsonPatch(from, to);
    assert.deepEqual(ops, expected);
    assert.deepEqual(applyJsonPatch(from, ops), to);
  }
});
