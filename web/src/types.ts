// The parts of the Assistants API v2 objects that the playground reads. The server sends more; what is
// not named here is passed through untouched.

export interface Page<T> {
  object: "list";
  data: T[];
  first_id?: string | null;
  last_id?: string | null;
  has_more: boolean;
}

export interface Model {
  id: string;
  owned_by: string;
}

export interface FunctionDefinition {
  name: string;
  description?: string;
  parameters?: Record<string, unknown>;
  strict?: boolean | null;
}

export type Tool =
  | { type: "code_interpreter" }
  | { type: "file_search"; file_search?: Record<string, unknown> }
  | { type: "function"; function: FunctionDefinition };

export interface ToolResources {
  code_interpreter?: { file_ids?: string[] } | null;
  file_search?: { vector_store_ids?: string[] } | null;
}

export interface Assistant {
  id: string;
  created_at: number;
  name: string | null;
  description: string | null;
  model: string;
  instructions: string | null;
  tools: Tool[];
  tool_resources: ToolResources | null;
  temperature: number | null;
  top_p: number | null;
  metadata: Record<string, string> | null;
}

export interface Thread {
  id: string;
  created_at: number;
  metadata: Record<string, string> | null;
  tool_resources: ToolResources | null;
}

export interface FileCitation {
  type: "file_citation";
  text: string;
  start_index: number;
  end_index: number;
  file_citation: { file_id: string };
}

export interface FilePath {
  type: "file_path";
  text: string;
  start_index: number;
  end_index: number;
  file_path: { file_id: string };
}

export type Annotation = FileCitation | FilePath;

export type MessageContent =
  | { type: "text"; text: { value: string; annotations: Annotation[] } }
  | { type: "image_file"; image_file: { file_id: string; detail?: string } }
  | { type: "image_url"; image_url: { url: string; detail?: string } }
  | { type: "refusal"; refusal: string };

export interface Attachment {
  file_id: string;
  tools: { type: "code_interpreter" | "file_search" }[];
}

export interface Message {
  id: string;
  created_at: number;
  thread_id: string;
  role: "user" | "assistant";
  status: string | null;
  content: MessageContent[];
  assistant_id: string | null;
  run_id: string | null;
  attachments: Attachment[] | null;
}

export interface LastError {
  code: string;
  message: string;
}

export interface FunctionCall {
  id: string;
  type: "function";
  function: { name: string; arguments: string; output?: string | null };
}

export type CodeOutput = { type: "logs"; logs: string } | { type: "image"; image: { file_id: string } };

export interface CodeInterpreterCall {
  id: string;
  type: "code_interpreter";
  code_interpreter: { input: string; outputs: CodeOutput[] };
}

export interface FileSearchResult {
  file_id: string;
  file_name: string;
  score: number;
  content?: { type: "text"; text: string }[];
}

export interface FileSearchCall {
  id: string;
  type: "file_search";
  file_search: { results?: FileSearchResult[] };
}

export type ToolCall = FunctionCall | CodeInterpreterCall | FileSearchCall;

export interface RequiredToolCall {
  id: string;
  type: "function";
  function: { name: string; arguments: string };
}

export interface Run {
  id: string;
  created_at: number;
  thread_id: string;
  assistant_id: string;
  status: string;
  model: string;
  last_error: LastError | null;
  incomplete_details: { reason: string } | null;
  required_action: {
    type: "submit_tool_outputs";
    submit_tool_outputs: { tool_calls: RequiredToolCall[] };
  } | null;
  usage: { prompt_tokens: number; completion_tokens: number; total_tokens: number } | null;
}

export type StepDetails =
  | { type: "message_creation"; message_creation: { message_id: string } }
  | { type: "tool_calls"; tool_calls: ToolCall[] };

export interface RunStep {
  id: string;
  created_at: number;
  run_id: string;
  type: "message_creation" | "tool_calls";
  status: string;
  step_details: StepDetails;
  last_error: LastError | null;
}

export interface FileObject {
  id: string;
  bytes: number;
  created_at: number;
  filename: string;
  purpose: string;
}

export interface VectorStore {
  id: string;
  created_at: number;
  name: string;
  status: string;
  file_counts: { in_progress: number; completed: number; failed: number; cancelled: number; total: number };
}

export interface VectorStoreFile {
  id: string;
  status: string;
  last_error: LastError | null;
}

export interface Deleted {
  id: string;
  deleted: boolean;
}
