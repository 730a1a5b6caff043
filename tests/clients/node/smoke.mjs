// The official openai Node SDK against assistd, as a user's script would drive it: the tutorial flow
// polled, a streamed run, and function calls (polled and streamed). assistd must answer with the
// scripted model (ASSISTD_DEFAULT_MODEL=scripted), whose replies are known in advance.
//
// Configuration is the SDK's own: OPENAI_BASE_URL (e.g. http://127.0.0.1:8000/v1) and OPENAI_API_KEY.
// The first argument names the installed SDK to use (package.json has two lines of it): "openai"
// (the default) or "openai-v6".
// Exits 1 with a message naming the first mismatch; on success prints one JSON line of what it saw.

const sdkModule = process.argv[2] ?? "openai";
const { default: OpenAI } = await import(sdkModule);
const { VERSION } = await import(`${sdkModule}/version`);

// No retries: a retried request would hide the server's first answer.
const client = new OpenAI({ maxRetries: 0 });

function check(what, actual, expected) {
  const same = JSON.stringify(actual) === JSON.stringify(expected);
  if (!same) {
    throw new Error(`${what}: expected ${JSON.stringify(expected)}, got ${JSON.stringify(actual)}`);
  }
}

function textOf(message) {
  return message.content.map((part) => (part.type === "text" ? part.text.value : `[${part.type}]`)).join("");
}

const weatherTool = {
  type: "function",
  function: {
    name: "get_weather",
    description: "The weather in a city.",
    parameters: { type: "object", properties: { city: { type: "string" } }, required: ["city"] },
  },
};

async function tutorial(assistant) {
  const thread = await client.beta.threads.create();
  check("thread object", thread.object, "thread");
  await client.beta.threads.messages.create(thread.id, { role: "user", content: "Solve 3x + 11 = 14." });
  const run = await client.beta.threads.runs.createAndPoll(thread.id, { assistant_id: assistant.id });
  check("tutorial run status", run.status, "completed");
  check("tutorial run usage is counted", run.usage !== null && run.usage.total_tokens > 0, true);

  // Auto-pagination with a page size of one: every page is fetched through `after`.
  const messages = [];
  for await (const message of client.beta.threads.messages.list(thread.id, { order: "asc", limit: 1 })) {
    messages.push(message);
  }
  check(
    "tutorial messages",
    messages.map((m) => [m.role, textOf(m)]),
    [
      ["user", "Solve 3x + 11 = 14."],
      ["assistant", "You said: Solve 3x + 11 = 14."],
    ],
  );
  check("reply run_id", messages[1].run_id, run.id);
  return textOf(messages[1]);
}

async function streamed(assistant) {
  const thread = await client.beta.threads.create({
    messages: [{ role: "user", content: "Stream this, please." }],
  });
  const deltas = [];
  const events = [];
  const stream = client.beta.threads.runs
    .stream(thread.id, { assistant_id: assistant.id })
    .on("event", (event) => events.push(event.event))
    .on("textDelta", (delta) => deltas.push(delta.value));
  const finalMessages = await stream.finalMessages();
  const run = await stream.finalRun();
  check("streamed run status", run.status, "completed");
  check("streamed text (deltas joined)", deltas.join(""), "You said: Stream this, please.");
  check("streamed text arrives in several deltas", deltas.length > 1, true);
  check(
    "streamed final messages",
    finalMessages.map((m) => textOf(m)),
    ["You said: Stream this, please."],
  );
  check("first stream event", events[0], "thread.run.created");
  check("last stream event", events.at(-1), "thread.run.completed");
  const stored = await client.beta.threads.messages.retrieve(finalMessages[0].id, { thread_id: thread.id });
  check("streamed message as stored", textOf(stored), deltas.join(""));
  return { text: deltas.join(""), deltas: deltas.length, events: events.length };
}

async function functionCallPolled(assistant) {
  const thread = await client.beta.threads.create({
    messages: [{ role: "user", content: '/call get_weather {"city": "Paris"}' }],
  });
  let run = await client.beta.threads.runs.createAndPoll(thread.id, { assistant_id: assistant.id });
  check("function run status", run.status, "requires_action");
  check("required action type", run.required_action?.type, "submit_tool_outputs");
  const calls = run.required_action.submit_tool_outputs.tool_calls;
  check(
    "tool calls",
    calls.map((c) => [c.type, c.function.name, JSON.parse(c.function.arguments)]),
    [["function", "get_weather", { city: "Paris" }]],
  );
  run = await client.beta.threads.runs.submitToolOutputsAndPoll(run.id, {
    thread_id: thread.id,
    tool_outputs: [{ tool_call_id: calls[0].id, output: "sunny, 21 C" }],
  });
  check("function run status after outputs", run.status, "completed");
  const page = await client.beta.threads.messages.list(thread.id, { order: "desc", limit: 1 });
  const reply = textOf(page.data[0]);
  check("function reply", reply, "get_weather returned sunny, 21 C");

  const steps = [];
  for await (const step of client.beta.threads.runs.steps.list(run.id, { thread_id: thread.id, order: "asc" })) {
    steps.push(step.type);
  }
  check("run steps", steps, ["tool_calls", "message_creation"]);
  return reply;
}

async function functionCallStreamed(assistant) {
  const thread = await client.beta.threads.create({
    messages: [{ role: "user", content: '/call get_weather {"city": "Oslo"}' }],
  });
  const first = client.beta.threads.runs.stream(thread.id, { assistant_id: assistant.id });
  const doneCalls = [];
  first.on("toolCallDone", (call) => doneCalls.push(call));
  const waiting = await first.finalRun();
  check("streamed function run status", waiting.status, "requires_action");
  check(
    "streamed tool calls",
    doneCalls.map((c) => [c.type, c.function.name, JSON.parse(c.function.arguments)]),
    [["function", "get_weather", { city: "Oslo" }]],
  );
  const callId = waiting.required_action.submit_tool_outputs.tool_calls[0].id;
  check("streamed tool call id", doneCalls[0].id, callId);

  const deltas = [];
  const second = client.beta.threads.runs
    .submitToolOutputsStream(waiting.id, {
      thread_id: thread.id,
      tool_outputs: [{ tool_call_id: callId, output: "snow" }],
    })
    .on("textDelta", (delta) => deltas.push(delta.value));
  const run = await second.finalRun();
  check("streamed function run status after outputs", run.status, "completed");
  check("streamed function reply", deltas.join(""), "get_weather returned snow");
  return deltas.join("");
}

async function main() {
  const assistant = await client.beta.assistants.create({
    model: "gpt-4o",
    name: "Math Tutor",
    instructions: "You are a personal math tutor.",
    tools: [weatherTool],
  });
  check("assistant object", [assistant.object, assistant.name, assistant.tools[0].function.name], [
    "assistant",
    "Math Tutor",
    "get_weather",
  ]);
  const result = {
    sdk: VERSION,
    tutorial: await tutorial(assistant),
    stream: await streamed(assistant),
    function_polled: await functionCallPolled(assistant),
    function_streamed: await functionCallStreamed(assistant),
  };
  const deleted = await client.beta.assistants.delete(assistant.id);
  check("assistant deleted", deleted.deleted, true);
  console.log(JSON.stringify(result));
}

main().catch((error) => {
  console.error(`node SDK smoke test failed: ${error?.stack ?? error}`);
  process.exit(1);
});
