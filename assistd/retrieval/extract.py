"""The text of an uploaded file, for vector stores and file_search.

:func:`extract_text` picks a reader by the file name's extension:

* text (``.txt``, ``.md``, ``.rst``, source code, ``.yaml``, ``.xml``, ...): the text as it is;
* ``.html``/``.htm``: the visible text, without scripts and styles, one line per block;
* ``.json``: pretty-printed (escapes such as ``\\u00e9`` become the characters), or as it is when the
  JSON is invalid or large;
* ``.csv``/``.tsv``: one line per row, the fields separated by `` | ``;
* ``.pdf`` (``pypdf``): the pages' texts, separated by blank lines;
* ``.docx`` (``python-docx``): the paragraphs and tables of the body, in order; one line per table row.

A file with another extension, or none, is looked at: a PDF or a Word document by its signature,
text if its first 64 KiB decode as text, and otherwise an unsupported file.

Text is decoded by its byte-order mark, else as UTF-8 (also when a few bytes are not valid UTF-8, which
then become U+FFFD), else by the encoding an HTML ``<meta>`` or an XML declaration names, else by
``charset-normalizer``'s guess, else as Windows-1252 unless the bytes look binary. Decoding never fails
on bad bytes. Whatever the format, line ends become ``\\n``, and NUL
characters (which PostgreSQL cannot store) and lone surrogates are removed.

Failures raise :class:`ExtractionError` with the ``code`` of a vector store file's ``last_error``:
``unsupported_file`` for a type that has no reader (an image, an archive, a spreadsheet), and
``invalid_file`` for a file of a supported type that yields no text (empty, damaged, encrypted, too
large). The ``message`` is a sentence for the user.

Untrusted input cannot make extraction hang or use unbounded memory: HTML is parsed by libxml2 (through
``lxml``, which ``python-docx`` requires anyway) in linear time, where the standard library's
``html.parser`` is quadratic on some input; ``pypdf``'s own limits bound each PDF object and page, and
:data:`MAX_PDF_PAGES`, :data:`PDF_TIME_LIMIT` and :data:`MAX_TEXT_CHARS` bound the whole; a ``.docx``
is checked against :data:`MAX_DOCX_BYTES` and :data:`MAX_DOCX_XML_BYTES` before it is unpacked.
Extraction is blocking work: call it in a thread.
"""

from __future__ import annotations

import codecs
import csv
import importlib
import io
import json
import logging
import re
import time
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path, PurePath
from typing import TYPE_CHECKING, Any, Final, Literal

import charset_normalizer

if TYPE_CHECKING:
    from docx.table import Table
    from docx.text.paragraph import Paragraph

logger = logging.getLogger("assistd.retrieval")

MAX_TEXT_CHARS: Final = 50_000_000  # of extracted text, whatever the format
MAX_TEXT_FILE_BYTES: Final = 100_000_000  # a text, HTML, JSON or CSV file is read whole
MAX_PDF_PAGES: Final = 5_000
PDF_TIME_LIMIT: Final = 300.0  # seconds for all of a PDF's pages
MAX_DOCX_BYTES: Final = 512 * 1024 * 1024  # a .docx's parts unpacked (python-docx holds them all in memory)
MAX_DOCX_XML_BYTES: Final = 128 * 1024 * 1024  # of them, the XML ones (parsed into lxml trees)
MAX_PRETTY_JSON_CHARS: Final = 10_000_000  # larger JSON is kept as it is (pretty-printing is slow Python)
SNIFF_BYTES: Final = 64 * 1024
DETECT_BYTES: Final = 256 * 1024  # the sample charset-normalizer guesses an encoding from

ErrorCode = Literal["unsupported_file", "invalid_file"]


class ExtractionError(Exception):
    """A file that yields no text: ``code`` and ``message`` are its ``last_error``."""

    def __init__(self, code: ErrorCode, message: str) -> None:
        super().__init__(message)
        self.code: ErrorCode = code
        self.message = message


Kind = Literal["text", "html", "json", "csv", "tsv", "pdf", "docx"]

_PROSE = ".txt .text .md .markdown .mdown .mkd .mdx .rst .adoc .asciidoc .org .textile .log .nfo"
_CODE = (
    ".py .pyi .pyw .ipy .js .mjs .cjs .jsx .ts .mts .cts .tsx .vue .svelte .astro .java .kt .kts .scala "
    ".groovy .gradle .clj .cljs .edn .c .h .cc .cpp .cxx .c++ .hh .hpp .hxx .h++ .m .mm .cs .fs .fsx .vb "
    ".go .rs .swift .dart .rb .erb .php .pl .pm .lua .r .jl .ex .exs .erl .hrl .hs .ml .mli .nim .zig .v "
    ".f .f90 .f95 .for .pas .ada .adb .ads .asm .s .sol .elm .purs .lisp .el .scm .rkt .tcl .awk .sed "
    ".sh .bash .zsh .fish .ksh .ps1 .psm1 .bat .cmd .css .scss .sass .less .styl .sql .graphql .gql "
    ".proto .thrift .yaml .yml .toml .ini .cfg .conf .cnf .properties .env .editorconfig .xml .xsd .xsl "
    ".xslt .svg .plist .tex .sty .cls .bib .srt .vtt .diff .patch .cmake .mk .make .dockerfile .tf .hcl "
    ".nix .jsonl .ndjson .jsonc .json5"
)
_KINDS: Final[dict[str, Kind]] = {
    **dict.fromkeys((_PROSE + " " + _CODE).split(), "text"),
    **dict.fromkeys((".html", ".htm", ".xhtml", ".shtml"), "html"),
    **dict.fromkeys((".json", ".ipynb", ".geojson", ".webmanifest"), "json"),
    ".csv": "csv",
    ".tsv": "tsv",
    ".tab": "tsv",
    ".pdf": "pdf",
    ".docx": "docx",
}
# Formats that have no reader here, named so that sniffing does not pass off their XML or RTF as text.
_OTHER_FORMATS = (
    ".doc .docm .dot .dotx .dotm .rtf .odt .ott .ods .odp .xls .xlsx .xlsm .xlsb .ppt .pptx .pptm .pages "
    ".key .numbers .epub .mobi"
)
_UNSUPPORTED: Final = frozenset(_OTHER_FORMATS.split())
_SUPPORTED_TYPES = "text, Markdown, HTML, JSON, CSV, source code, PDF and Word (.docx) files"


def extract_text(path: Path, filename: str) -> str:
    """The text of the file at ``path``, read as the type its ``filename`` names (see the module).

    Raises :class:`ExtractionError` for a file without text; ``OSError`` only for a ``path`` that
    cannot be read at all.
    """
    extension = PurePath(filename).suffix.lower()
    size = path.stat().st_size
    if size == 0:
        raise ExtractionError("invalid_file", "The file is empty.")
    if extension in _UNSUPPORTED:
        raise _unsupported(extension)
    kind = _KINDS.get(extension) or _sniff(path, size, extension)
    text = _READERS[kind](path, size)
    return _finish(text)


# --- the readers -------------------------------------------------------------------------------------


def _read_text(path: Path, size: int) -> str:
    return _decode_file(path, size)


def _read_html(path: Path, size: int) -> str:
    text = _decode_file(path, size)
    target = _HtmlText()
    # remove_comments/remove_pis: the target never sees them; no_network: no DTD or entity is fetched.
    parser = _lxml_etree().HTMLParser(target=target, no_network=True, remove_comments=True, remove_pis=True)
    try:
        parser.feed(text)
        parser.close()
    except Exception as error:  # libxml2 recovers from nearly anything; keep what it read before
        logger.info("HTML parsing stopped early: %s", error)
    return target.text()


def _read_json(path: Path, size: int) -> str:
    text = _decode_file(path, size)
    if len(text) > MAX_PRETTY_JSON_CHARS:
        return text
    try:
        value = json.loads(text)
    except (ValueError, RecursionError):  # not JSON (or too deep, or an over-long number): the text
        return text
    # Indentation grows with depth, so deep JSON could pretty-print to far more than it is: stop early.
    budget = min(MAX_TEXT_CHARS, 8 * len(text) + 65_536)
    parts: list[str] = []
    try:
        for part in json.JSONEncoder(indent=2, ensure_ascii=False).iterencode(value):
            budget -= len(part)
            if budget < 0:
                return text
            parts.append(part)
    except (ValueError, RecursionError):
        return text
    return "".join(parts)


def _read_csv(path: Path, size: int) -> str:
    return _read_table(path, size, ",")


def _read_tsv(path: Path, size: int) -> str:
    return _read_table(path, size, "\t")


def _read_table(path: Path, size: int, delimiter: str) -> str:
    text = _decode_file(path, size)
    lines: list[str] = []
    try:
        for row in csv.reader(io.StringIO(text, newline=""), delimiter=delimiter):
            fields = [" ".join(field.split()) for field in row]
            if any(fields):
                lines.append(" | ".join(fields))
    except csv.Error:  # e.g. a field over csv's size limit: the text as it is
        return text
    return "\n".join(lines)


def _read_pdf(path: Path, size: int) -> str:
    import pypdf  # here, not at the top: a server that reads no PDF never pays for the import
    from pypdf.errors import DependencyError

    deadline = time.monotonic() + PDF_TIME_LIMIT
    with path.open("rb") as stream:  # a stream, not the path: pypdf would read a path into memory whole
        try:
            reader = pypdf.PdfReader(stream)
            if reader.is_encrypted and reader.decrypt("") == pypdf.PasswordType.NOT_DECRYPTED:
                raise ExtractionError(
                    "invalid_file", "The PDF is protected by a password; upload a copy without one."
                )
            pages = len(reader.pages)
        except ExtractionError:
            raise
        except DependencyError:
            raise ExtractionError(
                "invalid_file", "The PDF is encrypted in a way this server cannot read (AES)."
            ) from None
        except Exception as error:  # pypdf raises all kinds of errors on damaged files
            logger.info("PDF unreadable: %r", error)
            raise ExtractionError(
                "invalid_file", "The file could not be read as a PDF; it may be damaged."
            ) from None
        if pages > MAX_PDF_PAGES:
            raise ExtractionError(
                "invalid_file", f"The PDF has {pages:,} pages; at most {MAX_PDF_PAGES:,} are supported."
            )
        texts: list[str] = []
        length = failed = 0
        for number in range(pages):
            if time.monotonic() > deadline:
                raise ExtractionError(
                    "invalid_file", "Reading the PDF took too long; it may be damaged or unusually complex."
                )
            try:
                page_text = reader.pages[number].extract_text()
            except DependencyError:
                raise ExtractionError(
                    "invalid_file", "The PDF is encrypted in a way this server cannot read (AES)."
                ) from None
            except Exception as error:  # one bad page does not spoil the others
                logger.info("PDF page %d unreadable: %r", number + 1, error)
                failed += 1
                continue
            page_text = page_text.strip()
            if page_text:
                texts.append(page_text)
                length += len(page_text) + 2
                if length > MAX_TEXT_CHARS:
                    raise _too_long()
    if not texts:
        if failed:
            raise ExtractionError("invalid_file", "The file could not be read as a PDF; it may be damaged.")
        raise ExtractionError(
            "invalid_file",
            "The PDF contains no text to extract; it may be scanned images, which are not supported.",
        )
    return "\n\n".join(texts)


def _read_docx(path: Path, size: int) -> str:
    invalid = ExtractionError(
        "invalid_file", "The file could not be read as a Word (.docx) document; it may be damaged."
    )
    try:
        with zipfile.ZipFile(path) as archive:
            members = archive.infolist()
    except (zipfile.BadZipFile, OSError, ValueError):
        raise invalid from None
    # python-docx unpacks every part into memory, and parses the XML ones into trees several times their
    # size; zipfile never inflates a part past the size its entry states.
    xml = sum(member.file_size for member in members if member.filename.endswith((".xml", ".rels")))
    if sum(member.file_size for member in members) > MAX_DOCX_BYTES or xml > MAX_DOCX_XML_BYTES:
        raise ExtractionError(
            "invalid_file", "The document is too large to read: its parts are too large when unpacked."
        )
    if not any(member.filename == "word/document.xml" for member in members):
        raise invalid
    import docx  # here, not at the top, as pypdf

    try:
        document = docx.Document(str(path))
        lines = list(_docx_blocks(document.iter_inner_content()))
    except Exception as error:  # python-docx and lxml raise many kinds of errors on damaged files
        logger.info("DOCX unreadable: %r", error)
        raise invalid from None
    # Empty paragraphs are Word's way to space paragraphs: keep one blank line of them.
    return _BLANK_LINES.sub("\n\n", "\n".join(lines))


_BLANK_LINES: Final = re.compile(r"\n{3,}")


def _docx_blocks(blocks: Iterator[Paragraph | Table]) -> Iterator[str]:
    """A line per paragraph, and per table row (the cells joined by `` | ``)."""
    from docx.text.paragraph import Paragraph

    for block in blocks:
        if isinstance(block, Paragraph):
            yield block.text
            continue
        for row in block.rows:
            cells: list[str] = []
            previous = None
            for cell in row.cells:
                if cell is previous:  # a cell spanning several columns is listed once for each
                    continue
                previous = cell
                cells.append(" ".join(" ".join(_docx_blocks(cell.iter_inner_content())).split()))
            if any(cells):
                yield " | ".join(cells)


_READERS: Final[dict[Kind, Callable[[Path, int], str]]] = {
    "text": _read_text,
    "html": _read_html,
    "json": _read_json,
    "csv": _read_csv,
    "tsv": _read_tsv,
    "pdf": _read_pdf,
    "docx": _read_docx,
}


# --- HTML --------------------------------------------------------------------------------------------

_HIDDEN: Final = frozenset(("script", "style", "template", "noscript"))
_PARAGRAPHS: Final = frozenset(
    ("p", "h1", "h2", "h3", "h4", "h5", "h6", "pre", "blockquote", "table", "title", "hr", "figure")
)
_BLOCKS: Final = _PARAGRAPHS | frozenset(
    (
        "address", "article", "aside", "body", "caption", "dd", "details", "dialog", "div", "dl", "dt",
        "fieldset", "figcaption", "footer", "form", "header", "hgroup", "html", "legend", "li", "main",
        "nav", "ol", "option", "section", "summary", "tbody", "tfoot", "thead", "tr", "ul",
    )
)  # fmt: skip
_CELLS: Final = frozenset(("td", "th"))
_PREFORMATTED: Final = frozenset(("pre", "textarea", "listing", "plaintext", "xmp"))


class _HtmlText:
    """An lxml parser target that keeps the visible text, roughly as a browser lays it out: whitespace
    collapsed (except in ``<pre>``), a line break around each block, a blank line around paragraphs
    and headings, a tab between table cells."""

    def __init__(self) -> None:
        self._parts: list[str] = []
        self._hidden = 0  # depth inside elements whose text is not shown
        self._preformatted = 0
        self._newlines = 0  # line breaks owed before the next text
        self._separator = ""  # a space or tab owed before the next text on the same line

    def start(self, tag: object, attrib: object) -> None:
        name = tag.lower() if isinstance(tag, str) else ""
        if name in _HIDDEN:
            self._hidden += 1
        if name in _PREFORMATTED:
            self._preformatted += 1
        if name == "br":
            self._newlines = min(self._newlines + 1, 2)
        else:
            self._block(name)

    def end(self, tag: object) -> None:
        name = tag.lower() if isinstance(tag, str) else ""
        if name in _HIDDEN:
            self._hidden = max(0, self._hidden - 1)
        if name in _PREFORMATTED:
            self._preformatted = max(0, self._preformatted - 1)
        if name in _CELLS and not self._newlines:
            self._separator = "\t"
        else:
            self._block(name)

    def data(self, data: str) -> None:
        if self._hidden:
            return
        if self._preformatted:
            if data:
                self._flush()
                self._parts.append(data)
            return
        words = data.split()
        if not words:
            if data and not self._separator and self._parts:
                self._separator = " "
            return
        if data[0].isspace() and not self._separator:
            self._separator = " "
        self._flush()
        self._parts.append(" ".join(words))
        if data[-1].isspace():
            self._separator = " "

    def close(self) -> None:
        return None

    def text(self) -> str:
        return "".join(self._parts)

    def _block(self, name: str) -> None:
        if name in _PARAGRAPHS:
            self._newlines = 2
        elif name in _BLOCKS:
            self._newlines = max(self._newlines, 1)

    def _flush(self) -> None:
        """Writes what is owed before new text: line breaks (none at the very start), or a separator."""
        if self._parts and self._newlines:
            self._parts.append("\n" * self._newlines)
        elif self._parts and self._separator:
            self._parts.append(self._separator)
        self._newlines = 0
        self._separator = ""


def _lxml_etree() -> Any:
    """``lxml.etree``, imported by name: lxml ships no type hints."""
    return importlib.import_module("lxml.etree")


# --- decoding ----------------------------------------------------------------------------------------

_BOMS: Final = (
    (codecs.BOM_UTF32_LE, "utf-32-le"),  # before UTF-16's, which it starts with
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)
_DECLARED: Final = re.compile(
    rb"""<\?xml[^>]{0,200}?encoding\s*=\s*["']([A-Za-z0-9._:-]{1,40})"""
    rb"""|<meta[^>]{0,400}?charset\s*=\s*["']?\s*([A-Za-z0-9._:-]{1,40})""",
    re.IGNORECASE,
)
_NON_ASCII: Final = re.compile(rb"[\x80-\xff]")
_SURROGATE: Final = re.compile(r"[\ud800-\udfff]")
_CONTROL: Final = re.compile(r"[\x00-\x08\x0e-\x1a\x1c-\x1f\x7f]")  # not \t \n \v \f \r or ESC


def _decode_file(path: Path, size: int) -> str:
    if size > MAX_TEXT_FILE_BYTES:
        raise ExtractionError(
            "invalid_file", f"The file is too large: more than {MAX_TEXT_FILE_BYTES // 1_000_000} MB of text."
        )
    data = path.read_bytes()
    text = _decode(data, _declared_encoding(data))
    if text is None:
        raise ExtractionError("invalid_file", "The file could not be decoded as text.")
    return text


def _decode(data: bytes, declared: str | None = None) -> str | None:
    """``data`` as text (see the module), or None when it does not look like text in any encoding."""
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            return data[len(bom) :].decode(encoding, errors="replace")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    lenient = data.decode("utf-8", errors="replace")
    # Each valid multi-byte character makes the text shorter than the bytes; each invalid byte becomes one
    # U+FFFD. Many of the first and few of the second: UTF-8 with a few damaged bytes.
    damaged = lenient.count("\ufffd") - data.count(b"\xef\xbf\xbd")
    if len(data) - len(lenient) >= 8 * damaged:
        return lenient
    if declared is not None:
        return data.decode(declared, errors="replace")
    sample = _detection_sample(data)
    guess = _guess_encoding(sample)
    if guess is not None:
        return data.decode(guess, errors="replace")
    # No confident guess (charset-normalizer gives up on some short texts): Windows-1252, the most common
    # legacy encoding, unless the bytes look binary.
    if b"\x00" in sample or _too_many_controls(sample.decode("latin-1")):
        return None
    return data.decode("cp1252", errors="replace")


def _guess_encoding(sample: bytes) -> str | None:
    """charset-normalizer's guess, except that Windows-1252 wins a tie: on short Western European texts
    several code pages score the same, and the first of them (often Windows-1250) is not the likely one."""
    matches = charset_normalizer.from_bytes(sample)
    best = matches.best()
    if best is None:
        return None
    for match in matches:
        if (
            "cp1252" in match.could_be_from_charset
            and match.chaos <= best.chaos
            and match.coherence >= best.coherence
        ):
            return "cp1252"
    return best.encoding


def _detection_sample(data: bytes) -> bytes:
    """The bytes to guess the encoding from: from a little before the first non-ASCII byte, since the
    start of a file is often plain ASCII in any encoding (UTF-16 and UTF-32, with NULs, from the start)."""
    first = _NON_ASCII.search(data)
    if first is None or b"\x00" in data[:4096]:
        return data[:DETECT_BYTES]
    begin = max(0, first.start() - 4096)
    return data[begin : begin + DETECT_BYTES]


def _declared_encoding(data: bytes) -> str | None:
    """The encoding an HTML ``<meta charset>`` or an XML declaration names, if Python knows it."""
    match = _DECLARED.search(data, 0, 4096)
    if match is None:
        return None
    name = (match.group(1) or match.group(2)).decode("ascii")
    try:
        return codecs.lookup(name).name
    except LookupError:
        return None


# --- sniffing and finishing --------------------------------------------------------------------------


def _sniff(path: Path, size: int, extension: str) -> Kind:
    """The kind of a file whose extension names none: a PDF, a Word document, text, or unsupported."""
    with path.open("rb") as stream:
        head = stream.read(SNIFF_BYTES)
    if b"%PDF-" in head[:1024]:
        return "pdf"
    if head.startswith(b"PK\x03\x04"):
        try:
            with zipfile.ZipFile(path) as archive:
                if "word/document.xml" in archive.namelist():
                    return "docx"
        except (zipfile.BadZipFile, OSError, ValueError):
            pass
        raise _unsupported(extension)
    if _looks_like_text(head, complete=size <= len(head)):
        return "text"
    raise _unsupported(extension)


def _looks_like_text(head: bytes, *, complete: bool) -> bool:
    if any(head.startswith(bom) for bom, _ in _BOMS):
        return True
    if b"\x00" in head:
        return False
    try:
        # An incremental decoder accepts a character cut at the end of the head.
        text: str | None = codecs.getincrementaldecoder("utf-8")().decode(head, final=complete)
    except UnicodeDecodeError:
        text = _decode(head)
    return text is not None and not _too_many_controls(text)


def _too_many_controls(text: str) -> bool:
    """Whether over 1% of ``text`` is control characters other than whitespace and ESC: binary data."""
    return len(_CONTROL.findall(text)) > len(text) // 100


def _finish(text: str) -> str:
    if len(text) > MAX_TEXT_CHARS:
        raise _too_long()
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    if "\x00" in text:
        text = text.replace("\x00", "")
    if _SURROGATE.search(text):  # lone ones, from JSON escapes or a PDF's broken text maps
        text = text.encode(errors="replace").decode()
    if not text.strip():
        raise ExtractionError("invalid_file", "The file contains no text.")
    return text


def _too_long() -> ExtractionError:
    return ExtractionError(
        "invalid_file", f"The file's text is too long: more than {MAX_TEXT_CHARS:,} characters."
    )


def _unsupported(extension: str) -> ExtractionError:
    kind = f"Files of type {extension}" if 1 < len(extension) <= 16 else "Files of this type"
    return ExtractionError(
        "unsupported_file", f"{kind} are not supported for file search; supported are {_SUPPORTED_TYPES}."
    )
