"""What SQL from outside the worker may do, decided on ClickHouse's own parse (EXPLAIN AST).

SQL that reaches the worker's web port runs in the worker's process, with its file access. It
may read the `streamlearn` database (and a few metadata tables of `system`), and the CLI may
insert into, mutate (ALTER ... UPDATE/DELETE) or optimize its tables; nothing else: no table
function (`file`, `url`, `s3`, `remote`, `input`, `executable`, even `numbers`), no other
database, no `INTO OUTFILE` / `FROM INFILE`, no DDL, `SET`, `SYSTEM` or `KILL`, and in
read-only requests no `SETTINGS` clause (the worker sets readonly and the time limit).

Pure: `refusal()` reads the text of `EXPLAIN AST <sql>`, whose node lines ClickHouse prints one
per line, indented by depth, `(children N)` at the end. An identifier or alias with a line break
prints extra lines; the tree is checked for consistency, and a parse that does not add up is
refused.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

DATABASE = "streamlearn"
# Metadata analysts use to see the tables' schema and size (as the tests' snapshots do).
SYSTEM_TABLES = frozenset({"system.tables", "system.columns", "system.parts", "system.one"})
READ_ROOTS = frozenset(
    {
        "SelectWithUnionQuery",
        "SelectIntersectExceptQuery",
        "ShowTables",
        "ShowColumns",
        "ShowCreateTableQuery",
        "DescribeQuery",
        "ExistsTableQuery",
        "Explain",
    }
)
WRITE_ROOTS = frozenset({"InsertQuery", "AlterQuery", "OptimizeQuery"})
MUTATIONS = frozenset({"UPDATE", "DELETE"})  # the ALTER commands accepted
# Parents under which a Function node is a table function or a table engine.
TABLE_POSITIONS = frozenset({"TableExpression", "InsertQuery", "Storage definition"})
# Ordinary functions that read outside the database (a file, a Join table of any database).
OUTSIDE_FUNCTIONS = frozenset({"file", "joinget", "joingetornull"})
# Nodes whose direct Literal child is a file name: INTO OUTFILE, FROM INFILE.
FILE_PARENTS = frozenset({"SelectWithUnionQuery", "Explain", "InsertQuery"})
# Read statements that take a trailing SETTINGS clause (SHOW TABLES/COLUMNS do not; cheap).
LIMITED_ROOTS = READ_ROOTS - {"ShowTables", "ShowColumns"}
_LINE = re.compile(r"^( *)(.*?)(?: \(children (\d+)\))?$")


@dataclass
class Node:
    depth: int
    kind: str  # e.g. "TableIdentifier", "Storage definition", "Function"
    args: list[str]  # the rest of the line, split on spaces
    declared: int  # the "(children N)" ClickHouse printed
    children: list[Node] = field(default_factory=list)
    parent: Node | None = None


def parse(lines: Sequence[str]) -> Node:
    """The tree of EXPLAIN AST's lines; ValueError if they do not form exactly one."""
    stack: list[Node] = []
    root: Node | None = None
    for line in lines:
        m = _LINE.match(line)
        if m is None or not m[2]:
            raise ValueError(f"unexpected line {line!r}")
        depth, text = len(m[1]), m[2]
        words = text.split(" ")
        kind_len = 2 if words[:2] in (["Storage", "definition"], ["Columns", "definition"]) else 1
        node = Node(depth, " ".join(words[:kind_len]), words[kind_len:], int(m[3] or 0))
        if root is None:
            if depth:
                raise ValueError("the parse does not start at its root")
            root = node
        elif depth == 0 or depth > len(stack):
            raise ValueError("a second root, or a line deeper than its parent allows")
        else:
            node.parent = stack[depth - 1]
            node.parent.children.append(node)
        del stack[depth:]
        stack.append(node)
    if root is None:
        raise ValueError("an empty parse")
    return root


def _walk(node: Node):
    yield node
    for child in node.children:
        yield from _walk(child)


def _node_refusal(node: Node, readonly: bool) -> str | None:
    parent = node.parent.kind if node.parent else ""
    name = node.args[0] if node.args else ""
    if len(node.children) != node.declared:
        return "its parse does not add up (a line break in an identifier or alias?)"
    if node.kind == "Function" and parent in TABLE_POSITIONS:
        return f"the table function or engine {name}() reaches outside the database"
    if node.kind == "Function" and name.lower() in OUTSIDE_FUNCTIONS:
        return f"the function {name}() reaches outside the database"
    if node.kind == "TableIdentifier" and "." in name:
        database = name.split(".", 1)[0]
        if database != DATABASE and name not in SYSTEM_TABLES:
            return f"the table {name} is outside the {DATABASE} database"
    if node.kind == "Literal" and parent in FILE_PARENTS:
        return "INTO OUTFILE / FROM INFILE reach files outside the database"
    if node.kind == "Set" and readonly:
        return "a SETTINGS clause (the worker sets readonly and the time limit)"
    return None


def _root_refusal(root: Node, write: bool) -> str | None:
    allowed = READ_ROOTS | (WRITE_ROOTS if write else frozenset())
    if root.kind not in allowed:
        if write:
            return (
                f"{root.kind} refused (the worker runs SELECT, SHOW, DESCRIBE, EXISTS, EXPLAIN, "
                "INSERT, ALTER ... UPDATE/DELETE and OPTIMIZE)"
            )
        return f"{root.kind} refused (a read-only request: SELECT, SHOW, DESCRIBE, EXISTS, EXPLAIN)"
    if root.kind == "Explain":
        inner = root.children[0].kind if root.children else ""
        if inner not in READ_ROOTS:
            return f"EXPLAIN of a {inner or 'missing'} statement (only of reads)"
    if root.kind in ("AlterQuery", "OptimizeQuery") and root.args[:1] != [DATABASE]:
        return f"{root.kind} on a table outside the {DATABASE} database"
    if root.kind == "InsertQuery":
        idents = [c.args[0] for c in root.children if c.kind == "Identifier" and c.args]
        if idents[:1] != [DATABASE] or len(idents) < 2:
            return f"an INSERT into a table outside the {DATABASE} database"
    if root.kind == "AlterQuery":
        commands = [n for n in _walk(root) if n.kind == "AlterCommand"]
        bad = [c.args[0] for c in commands if c.args[:1] and c.args[0] not in MUTATIONS]
        if bad or not commands:
            return f"ALTER {', '.join(bad) or '?'} (only UPDATE and DELETE are accepted)"
    return None


def refusal(explain_lines: Sequence[str], *, readonly: bool, write: bool = False) -> str | None:
    """Why this statement may not run over the web port, or None. `explain_lines` are the
    rows of `EXPLAIN AST <sql>`; `write`: the command endpoint (inserts and mutations)."""
    try:
        root = parse(explain_lines)
    except ValueError as exc:
        return f"its parse does not add up ({exc})"
    reason = _root_refusal(root, write and not readonly)
    if reason:
        return reason
    for node in _walk(root):
        reason = _node_refusal(node, readonly)
        if reason:
            return reason
    return None


def with_limits(
    sql: str, explain_lines: Sequence[str], max_execution_s: float, *, readonly_clause: bool = True
) -> str:
    """The read-only statement with the worker's limits as its own SETTINGS clause.

    Query-level settings, not session ones: they hold for this statement only (the session the
    worker writes on keeps its settings), and readonly=1 comes last so nothing after it changes.
    """
    root = explain_lines[0].split(" ", 1)[0] if explain_lines else ""
    if root not in LIMITED_ROOTS:
        return sql
    body = sql.rstrip().rstrip(";").rstrip()
    readonly = ", readonly = 1" if readonly_clause else ""
    return f"{body}\nSETTINGS max_execution_time = {max_execution_s:g}{readonly}"
