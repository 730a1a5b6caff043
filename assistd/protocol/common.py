"""Pieces shared by several request bodies: metadata, tools, tool resources, response formats."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator
from pydantic_core import PydanticCustomError

from assistd.protocol.storable import find_unstorable

METADATA_MAX_PAIRS = 16
METADATA_MAX_KEY = 64
METADATA_MAX_VALUE = 512


class RequestModel(BaseModel):
    """Base of every request body: unknown fields are refused, as OpenAI does."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class RequestBody(RequestModel):
    """A whole request body, refused at once if any part of it cannot be stored (see storable.py)."""

    @model_validator(mode="before")
    @classmethod
    def _refuse_unstorable(cls, data: Any) -> Any:
        found = find_unstorable(data)
        if found is not None:
            path, problem = found
            # The error names the field; the HTTP layer turns ctx["param"] into the error's param.
            raise PydanticCustomError("unstorable", problem, {"param": path or None})
        return data


def _check_metadata(value: dict[str, str] | None) -> dict[str, str] | None:
    if value is None:
        return None
    if len(value) > METADATA_MAX_PAIRS:
        raise ValueError(
            f"too many properties. Expected an object with at most {METADATA_MAX_PAIRS} properties, "
            f"but got an object with {len(value)} properties instead."
        )
    for key, item in value.items():
        if len(key) > METADATA_MAX_KEY:
            raise ValueError(
                f"key '{key[:METADATA_MAX_KEY]}...' too long. Expected a key with maximum length "
                f"{METADATA_MAX_KEY}, but got a key with length {len(key)} instead."
            )
        if len(item) > METADATA_MAX_VALUE:
            raise ValueError(
                f"value of '{key}' too long. Expected a string with maximum length "
                f"{METADATA_MAX_VALUE}, but got a string with length {len(item)} instead."
            )
    return value


Metadata = Annotated[dict[str, str] | None, AfterValidator(_check_metadata)]
"""Up to 16 string pairs; keys up to 64 characters, values up to 512."""

FunctionName = Annotated[str, Field(pattern=r"^[a-zA-Z0-9_-]+$", min_length=1, max_length=64)]


class FunctionDefinition(RequestModel):
    name: FunctionName
    description: str | None = None
    parameters: dict[str, Any] | None = None
    strict: bool | None = None


class FunctionTool(RequestModel):
    type: Literal["function"]
    function: FunctionDefinition


class CodeInterpreterTool(RequestModel):
    type: Literal["code_interpreter"]


class RankingOptions(RequestModel):
    ranker: Literal["auto", "default_2024_08_21"] | None = None
    score_threshold: float = Field(ge=0, le=1)


class FileSearchSettings(RequestModel):
    max_num_results: int | None = Field(default=None, ge=1, le=50)
    ranking_options: RankingOptions | None = None


class FileSearchTool(RequestModel):
    type: Literal["file_search"]
    file_search: FileSearchSettings | None = None


class FileSearchTypeOnly(RequestModel):
    type: Literal["file_search"]


AssistantTool = Annotated[CodeInterpreterTool | FileSearchTool | FunctionTool, Field(discriminator="type")]


def _no_function_named_as_a_server_tool(tools: list[Any]) -> list[Any]:
    """The server runs file_search and code_interpreter itself, offering each to the model as a function
    of that name: a function of the same name beside the tool could never reach the client."""
    kinds = {tool.type for tool in tools}
    for tool in tools:
        if tool.type == "function" and tool.function.name in kinds:
            raise ValueError(
                f"A function may not be named '{tool.function.name}' beside the {tool.function.name} "
                "tool: the server runs that tool itself."
            )
    return tools


# A list of tools, as assistants and runs take them.
AssistantTools = Annotated[list[AssistantTool], AfterValidator(_no_function_named_as_a_server_tool)]

ASSISTANT_MAX_TOOLS = 128


class CodeInterpreterResources(RequestModel):
    file_ids: list[str] = Field(default_factory=list, max_length=20)


class StaticChunking(RequestModel):
    max_chunk_size_tokens: int = Field(ge=100, le=4096)
    chunk_overlap_tokens: int = Field(ge=0)

    @model_validator(mode="after")
    def _overlap_at_most_half(self) -> StaticChunking:
        if self.chunk_overlap_tokens > self.max_chunk_size_tokens // 2:
            raise ValueError("chunk_overlap_tokens must not exceed half of max_chunk_size_tokens.")
        return self


class AutoChunkingStrategy(RequestModel):
    type: Literal["auto"]


class StaticChunkingStrategy(RequestModel):
    type: Literal["static"]
    static: StaticChunking


ChunkingStrategy = Annotated[AutoChunkingStrategy | StaticChunkingStrategy, Field(discriminator="type")]


class VectorStoreHelper(RequestModel):
    """``tool_resources.file_search.vector_stores[]``: asks the server to make a vector store on the fly."""

    file_ids: list[str] = Field(default_factory=list)
    chunking_strategy: ChunkingStrategy | None = None
    metadata: Metadata = None


class FileSearchResources(RequestModel):
    vector_store_ids: list[str] | None = Field(default=None, max_length=1)


class FileSearchCreateResources(FileSearchResources):
    vector_stores: list[VectorStoreHelper] | None = Field(default=None, max_length=1)

    @model_validator(mode="after")
    def _one_store_source(self) -> FileSearchCreateResources:
        # The spec's oneOf: an assistant or a thread has at most one vector store, either named or made.
        if self.vector_store_ids is not None and self.vector_stores is not None:
            raise ValueError(
                "give either 'vector_store_ids' or 'vector_stores', not both "
                "(at most one vector store can be attached)"
            )
        return self


class ToolResources(RequestModel):
    """Tool resources as modify requests accept them: ids only."""

    code_interpreter: CodeInterpreterResources | None = None
    file_search: FileSearchResources | None = None


class ToolResourcesCreate(ToolResources):
    """Tool resources as create requests accept them: the vector store helper is allowed too."""

    file_search: FileSearchCreateResources | None = None


class ResponseFormatText(RequestModel):
    type: Literal["text"]


class ResponseFormatJsonObject(RequestModel):
    type: Literal["json_object"]


class JsonSchemaSpec(RequestModel):
    name: FunctionName
    description: str | None = None
    # "schema" shadows a BaseModel attribute, hence the alias.
    schema_: dict[str, Any] | None = Field(default=None, alias="schema")
    strict: bool | None = None

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class ResponseFormatJsonSchema(RequestModel):
    type: Literal["json_schema"]
    json_schema: JsonSchemaSpec


ResponseFormat = (
    Literal["auto"]
    | Annotated[
        ResponseFormatText | ResponseFormatJsonObject | ResponseFormatJsonSchema,
        Field(discriminator="type"),
    ]
)

Temperature = Annotated[float | None, Field(ge=0, le=2)]
TopP = Annotated[float | None, Field(ge=0, le=1)]
ReasoningEffort = Literal["none", "minimal", "low", "medium", "high", "xhigh", "max"]


def dump_response_format(value: ResponseFormat | None) -> str | dict[str, Any] | None:
    """The stored and returned form of a response format (an explicit null inside means left out)."""
    if value is None or isinstance(value, str):
        return value
    return value.model_dump(mode="json", by_alias=True, exclude_unset=True, exclude_none=True)
