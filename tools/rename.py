"""One name per idea (issue 11, item 5, and the settings leaf of item 4): ``python tools/rename.py``.

Run from the repository root on a clean tree. Idempotent: a second run changes nothing, and it
rewrites files it has never seen (a new module that still says ``from shop.x import ...``), so it
can run again after any merge. It ``git mv``s files, rewrites Python by its tokens (imports,
identifiers, strings, comments) and the other text files by pattern. It prints what it changed.

Mapping
-------
"catalogue" -> "catalog" (the providers' APIs, Dagster and the mission say catalog), case kept and
in every form: ``api/routes/catalogue.py`` -> ``api/routes/catalog.py`` and ``GET
/shops/{tenant}/catalogue`` -> ``/shops/{tenant}/catalog`` (tag ``catalog``), ``Catalogue`` /
``CatalogueItem`` -> ``Catalog`` / ``CatalogItem``, ``shop/catalogue.py`` ->
``commerce/catalog.py``, ``load_catalogue`` -> ``load_catalog``, sandbox ``catalogue()`` /
``CATALOGUE_SEED`` -> ``catalog()`` / ``CATALOG_SEED`` (our own names: no provider spells it so),
prose in code, docs and dbt YAML. No table or column is named catalogue; the ``products`` table's
comment did: the model says catalog, and the script writes the Alembic revision
``0011_products_catalog_comment`` on the newest revision of the ``pos`` branch it finds, which
changes that comment on PostgreSQL (SQLite keeps none). Earlier migrations keep their text.

"shop" meant five things; now each has one name:

* the package of commerce services -> ``commerce/`` (``shop/`` moved whole; ``from shop.x`` ->
  ``from commerce.x``, dotted names in strings such as ``mock.patch`` targets, logger names
  ``storehouse.shop.*`` -> ``storehouse.commerce.*``, ``shop/x.py`` in prose, ``tests/test_layout.py``,
  ``pyproject.toml`` packages and warning filters);
* the tenant as the selling API sees it (``shop/shops.py``) -> ``commerce/storefronts.py``:
  ``Shop`` -> ``Storefront``, ``ShopDirectory`` -> ``StorefrontDirectory``, ``Services.shops`` ->
  ``Services.storefronts``, ``ShopDep`` -> ``StorefrontDep``, ``get_shop``/``shop_dep`` ->
  ``get_storefront``/``storefront_dep``, and every identifier spelling shop in our code the same way
  (``shop`` -> ``storefront``, ``SHOP`` -> ``STOREFRONT``, ``open_shop`` -> ``open_storefront``,
  ``tests/api_shop.py`` -> ``tests/api_storefront.py``, ``storehouse/demo_shop.py`` ->
  ``storehouse/demo_storefront.py``, ``bench/_shop.py`` -> ``bench/_storefront.py``, test files);
* the path parameter ``{shop}`` -> ``{tenant}`` (``ShopSlug``/``shop_slug`` -> ``TenantSlug``/
  ``tenant_slug``); the response field ``Catalog.shop`` -> ``Catalog.tenant``;
* the Dagster group ``shop`` -> ``orders``, asset keys ``shop/*`` -> ``orders/*`` (``stuck_orders``
  and the dbt marts, whose folder ``analytics/models/shop`` -> ``analytics/models/orders``), job
  ``shop_hourly`` -> ``orders_hourly``, ``assets/shop.py`` / ``pipelines/shop.py`` ->
  ``assets/orders.py`` / ``pipelines/orders.py`` (``shop_assets``/``shop_checks``/``shop_job`` ->
  ``orders_*``, ``shop_stuck_orders`` -> ``stuck_orders``), the staff analytics key ``shop_daily``
  -> ``orders_daily``;
* the table module ``warehouse/tables/shop.py`` -> ``warehouse/tables/orders.py``.

Kept on purpose: the URL collection ``/shops/`` and the problem type ``shop-not-found`` (the public
contract customers' links already use; "shop" in prose now means only that: a tenant's storefront),
the environment variables ``STOREHOUSE_SHOP_*`` (deployments set them; the settings class reading
them is ``commerce.settings.CommerceSettings``), the Alembic branch label ``shop`` and every
migration's text (history), and the providers' own words: nothing in ``sandbox/``, the Shopify and
Blaze clients, ``tests/sandbox/``, ``tests/pos_accounts.py`` or ``tests/contracts/`` has its "shop"
renamed (Shopify's ``shop``, Blaze's ``shop_id``/``shopId``).

Also: imports of the moved modules re-sorted within their block, continuation lines aligned with
a bracket follow it when a name before it changed length, the README flow diagram's column kept
aligned. What a merged branch adds is renamed by the same rules; a file the rules cannot place
(say a new ``shop/x.py`` when ``commerce/x.py`` exists too) stops the script with a message.

Settings leaf: ``storehouse/settings.py`` -> ``settings/__init__.py``, a top-level package every
layer may import (``from settings import Settings``); ``tests/test_layout.py`` knows it as the leaf
(``SETTINGS``, ``OURS``, ``ALLOWED["settings"] = set()``) and ``pyproject.toml`` packages it. The
domain settings (``commerce.settings``, ``api.settings``, ``people.settings``) stay with their
domains: each is read only by its own package and the layers above it, which the layering allows.
"""

from __future__ import annotations

import io
import re
import shutil
import subprocess
import sys
import tokenize
from pathlib import Path

ROOT = Path.cwd()
SELF = "tools/rename.py"

# (old, new) paths, in order; a directory moves whole, or file by file into an existing one.
MOVES = [
    ("shop", "commerce"),
    ("commerce/shops.py", "commerce/storefronts.py"),
    ("storehouse/settings.py", "settings/__init__.py"),
    ("assets/shop.py", "assets/orders.py"),
    ("pipelines/shop.py", "pipelines/orders.py"),
    ("warehouse/tables/shop.py", "warehouse/tables/orders.py"),
    ("analytics/models/shop", "analytics/models/orders"),
]
# Module renames that follow from the moves (plus generic ones found per file, see ``generic_move``).
MODULES = {
    "shop": "commerce",
    "commerce.shops": "commerce.storefronts",
    "shop.shops": "commerce.storefronts",
    "storehouse.settings": "settings",
    "assets.shop": "assets.orders",
    "pipelines.shop": "pipelines.orders",
    "warehouse.tables.shop": "warehouse.tables.orders",
}
# Identifiers whose new name is not the generic one.
NAMES = {
    "ShopSettings": "CommerceSettings",
    "ShopSlug": "TenantSlug",
    "shop_slug": "tenant_slug",
    "shop_assets": "orders_assets",
    "shop_checks": "orders_checks",
    "shop_job": "orders_job",
    "shop_stuck_orders": "stuck_orders",
    "shop_daily": "orders_daily",
    "shop_hourly": "orders_hourly",
}
# Providers' own words, never renamed wherever they appear.
PROVIDER_NAMES = {"shop_id", "shopId", "ShopBucket", "for_shop"}
# Where "shop" is the provider's word: only module paths (imports) change there, and catalogue.
PROVIDER_FILES = ("sandbox/", "tests/sandbox/", "tests/contracts/", "tests/pos_accounts.py",
                  "resources/pos/shopify.py", "resources/pos/blaze.py", "bench/pos_webhook_latency.py")
HISTORY = ("warehouse/migrations/versions/",)  # imports only
UNTOUCHED = ("tests/contracts/", SELF)
TEXT_SUFFIXES = {".md", ".yml", ".yaml", ".toml", ".sql", ".txt", ".ini", ".mako", ".cfg", ".html", ".css", ".js"}
TEXT_NAMES = {"dev", "ci/run", "Dockerfile", "Makefile"}
# Per-file identifier overrides.
FILE_NAMES = {"api/schemas.py": {"shop": "tenant"}}


def git(*args: str) -> str:
    return subprocess.run(["git", *args], cwd=ROOT, check=True, capture_output=True, text=True).stdout


def tracked() -> list[str]:
    return [p for p in git("ls-files", "-z").split("\0") if p and (ROOT / p).exists()]


# ---- names ------------------------------------------------------------------------------------

def catalog(text: str) -> str:
    return text.replace("catalogue", "catalog").replace("Catalogue", "Catalog").replace("CATALOGUE", "CATALOG")


def rename_identifier(name: str, path: str) -> str:
    local = FILE_NAMES.get(path, {})
    if name in local:
        return local[name]
    name = catalog(name)
    if path.startswith("sandbox/") or name in PROVIDER_NAMES or "shopify" in name.lower():
        return name
    if path.startswith(PROVIDER_FILES) and name in ("shop", "shops", "SHOP"):  # the provider's word
        return name
    if name in NAMES:
        return NAMES[name]
    return name.replace("shop", "storefront").replace("Shop", "Storefront").replace("SHOP", "STOREFRONT")


def rename_module(dotted: str) -> str:
    parts = dotted.split(".")
    for i in range(len(parts), 0, -1):
        head = ".".join(parts[:i])
        if head in MODULES:
            return catalog(".".join([MODULES[head], *parts[i:]]))
    return catalog(dotted)


# ---- moves ------------------------------------------------------------------------------------

def generic_move(path: str) -> str | None:
    """Files spelling catalogue, and test/bench/CLI modules named after the shop, anywhere."""
    if path.startswith(UNTOUCHED) or path.startswith(HISTORY) or path.startswith(PROVIDER_FILES):
        return None
    new = catalog(path)
    folder, _, base = new.rpartition("/")
    if folder in ("tests", "bench", "storehouse") and "shop" in base and "shopify" not in base:
        new = f"{folder}/" + base.replace("shop", "storefront")
    return new if new != path else None


def move(old: str, new: str, files: list[str]) -> list[tuple[str, str]]:
    inside = [p for p in files if p == old or p.startswith(old + "/")]
    done = []
    for path in inside:
        target = new + path[len(old):]
        (ROOT / target).parent.mkdir(parents=True, exist_ok=True)
        if (ROOT / target).exists():
            sys.exit(f"rename: cannot move {path}: {target} exists (merge them by hand, then run again)")
        git("mv", path, target)
        done.append((path, target))
    if inside and (ROOT / old).is_dir():  # left behind: __pycache__ and other untracked leftovers
        for cache in (ROOT / old).rglob("__pycache__"):
            shutil.rmtree(cache, ignore_errors=True)
        for folder in sorted((ROOT / old).rglob("*"), reverse=True):
            if folder.is_dir() and not any(folder.iterdir()):
                folder.rmdir()
        if not any((ROOT / old).iterdir()):
            (ROOT / old).rmdir()
    return done


def module_of(path: str) -> str | None:
    if not path.endswith(".py"):
        return None
    parts = path[:-3].split("/")
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts) if parts else None


def do_moves() -> None:
    for old, new in MOVES:
        for a, b in move(old, new, tracked()):
            print(f"moved {a} -> {b}")
    for path in tracked():
        new = generic_move(path)
        if new:
            for a, b in move(path, new, [path]):
                print(f"moved {a} -> {b}")
                old_mod, new_mod = module_of(a), module_of(b)
                if old_mod and new_mod and old_mod != new_mod:
                    MODULES[old_mod] = new_mod


def learn_modules() -> None:
    """Modules an earlier run moved, so a file it never saw still finds its new imports."""
    for path in tracked():
        mod = module_of(path)
        if not mod:
            continue
        folder, _, base = mod.rpartition(".")
        if folder in ("tests", "bench", "storehouse") and "storefront" in base:
            MODULES.setdefault(f"{folder}.{base.replace('storefront', 'shop')}", mod)
        if "catalog" in base:
            MODULES.setdefault(f"{folder}.{base.replace('catalog', 'catalogue')}".lstrip("."), mod)
    for path in tracked():
        if path.startswith("commerce/") and path.endswith(".py") and path.count("/") == 1:
            stem = path[len("commerce/"):-3]
            if stem != "__init__":
                MODULES.setdefault(f"shop.{stem}", f"commerce.{stem}")


# ---- prose and strings ------------------------------------------------------------------------

def path_rules() -> list[tuple[re.Pattern, str]]:
    """Paths and dotted module names of moved modules as text (docs, docstrings, patch targets)."""
    rules = [(re.compile(r"(?<![\w./{-])shop/(stuck_orders|mart_\w+)\b"), r"orders/\1"),  # asset keys
             (re.compile(r"\bstorehouse\.shop\."), "storehouse.commerce."),  # logger names
             (re.compile(r"(?<![\w./-])storehouse/settings\.py"), "settings/__init__.py")]
    pairs = {}
    for old, new in sorted(MODULES.items(), key=lambda kv: -len(kv[0])):
        if "." not in old:
            continue
        pairs[old] = new
    for old, new in pairs.items():
        rules.append((re.compile(r"(?<![\w.])" + re.escape(old) + r"(?![\w])"), new))
        old_path, new_path = old.replace(".", "/"), new.replace(".", "/")
        new_file = new_path + ".py" if new != "settings" else "settings/__init__.py"
        rules.append((re.compile(r"(?<![\w./-])" + re.escape(old_path) + r"\.py\b"), new_file))
    rules += [(re.compile(r"(?<![\w./-])analytics/models/shop\b"), "analytics/models/orders"),
              (re.compile(r"(?<![\w./{-])shop/"), "commerce/"),
              (re.compile(r"`shop\.py`"), "`orders.py`")]
    return rules


def prose(text: str, path: str, fstring: bool = False) -> str:
    text = catalog(text)
    if path.startswith(PROVIDER_FILES):
        return text
    for pattern, new in path_rules_cache:
        text = pattern.sub(new, text)
    if not fstring:
        text = text.replace("{shop}", "{tenant}")
    # identifiers named in prose (``ShopDep``, ``open_shop``), not the words shop and shops
    text = re.sub(r"\b(?:\w+Shop\w*|Shop(?!s\b)\w+|\w*_shop\w*|shop_\w*)\b",
                  lambda m: rename_identifier(m.group(), path), text)
    text = re.sub(r'\["shop", "', '["orders", "', text)  # Dagster asset keys
    return text


path_rules_cache: list[tuple[re.Pattern, str]] = []


def fstring_names(body: str, path: str) -> str:
    """Identifiers inside an f-string's replacement fields."""
    out, i, depth, start = [], 0, 0, 0
    while i < len(body):
        c = body[i]
        if depth == 0 and c in "{}" and body[i:i + 2] in ("{{", "}}"):
            i += 2
            continue
        if c == "{":
            if depth == 0:
                out.append(prose(body[start:i], path, fstring=True))
                start = i
            depth += 1
        elif c == "}" and depth:
            depth -= 1
            if depth == 0:
                field = body[start:i + 1]
                out.append(re.sub(r"[A-Za-z_]\w*", lambda m: rename_identifier(m.group(), path)
                                  if not path.startswith(HISTORY) else m.group(), field))
                start = i + 1
        i += 1
    out.append(prose(body[start:], path, fstring=True))
    return "".join(out)


def rewrite_string(token: str, path: str) -> str:
    prefix = re.match(r"[A-Za-z]*", token).group()
    if "f" in prefix.lower():
        return prefix + fstring_names(token[len(prefix):], path)
    return prose(token, path)


# ---- Python -----------------------------------------------------------------------------------

def rewrite_python(text: str, path: str) -> str:
    toks = list(tokenize.generate_tokens(io.StringIO(text).readline))
    offsets = [0]
    for line in text.splitlines(keepends=True):
        offsets.append(offsets[-1] + len(line))

    def off(pos: tuple[int, int]) -> int:
        return offsets[pos[0] - 1] + pos[1]

    edits: list[tuple[int, int, str]] = []
    handled: set[int] = set()
    local: dict[str, str] = {}
    skip = {tokenize.NL, tokenize.COMMENT}
    significant = [i for i, t in enumerate(toks) if t.type not in skip]

    def dotted(k: int) -> tuple[str, int]:
        """The dotted name starting at significant index k: (name, next k)."""
        parts = [toks[significant[k]].string]
        k += 1
        while k + 1 < len(significant) and toks[significant[k]].string == "." \
                and toks[significant[k + 1]].type == tokenize.NAME:
            parts.append(toks[significant[k + 1]].string)
            k += 2
        return ".".join(parts), k

    def replace_span(k0: int, k1: int, new: str) -> None:
        first, last = toks[significant[k0]], toks[significant[k1 - 1]]
        edits.append((off(first.start), off(last.end), new))
        handled.update(significant[k0:k1])

    statement_start = True
    k = 0
    while k < len(significant):
        t = toks[significant[k]]
        if statement_start and t.type == tokenize.NAME and t.string in ("from", "import"):
            if t.string == "from" and toks[significant[k + 1]].type == tokenize.NAME:
                module, k2 = dotted(k + 1)
                new_module = rename_module(module)
                if new_module != module:
                    replace_span(k + 1, k2, new_module)
                k = k2 + 1  # past "import"
                while k < len(significant) and toks[significant[k]].type != tokenize.NEWLINE:
                    n = toks[significant[k]]
                    if n.type == tokenize.NAME and n.string != "as":
                        aliased = toks[significant[k + 1]].string == "as"
                        new = rename_module(f"{module}.{n.string}").rsplit(".", 1)[-1]
                        if new != n.string:  # a module renamed: so is the name it is bound to here
                            replace_span(k, k + 1, new)
                            if not aliased:
                                local[n.string] = new
                        if aliased:
                            k += 2  # past "as" and the alias: an identifier like any other
                    k += 1
                continue
            if t.string == "import":
                k += 1
                while k < len(significant) and toks[significant[k]].type != tokenize.NEWLINE:
                    if toks[significant[k]].type == tokenize.NAME and toks[significant[k]].string != "as":
                        module, k2 = dotted(k)
                        if rename_module(module) != module:
                            replace_span(k, k2, rename_module(module))
                        k = k2
                        if k < len(significant) and toks[significant[k]].string == "as":
                            k += 1  # the alias: an identifier
                        continue
                    k += 1
                continue
        statement_start = t.type in (tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT) or t.string == ";"
        k += 1

    history = path.startswith(HISTORY)
    for i, t in enumerate(toks):
        if i in handled or history:
            continue
        if t.type == tokenize.NAME:
            new = local.get(t.string) or rename_identifier(t.string, path)
        elif t.type == tokenize.STRING:
            new = rewrite_string(t.string, path)
        elif t.type == tokenize.COMMENT:
            new = prose(t.string, path)
        else:
            continue
        if new != t.string:
            edits.append((off(t.start), off(t.end), new))

    edits += realign(toks, edits, offsets)
    for start, end, new in sorted(edits, reverse=True):
        text = text[:start] + new + text[end:]
    return text


def realign(toks: list[tokenize.TokenInfo], edits: list[tuple[int, int, str]], offsets: list[int]) -> list:
    """Continuation lines aligned with an opening bracket follow it when a name before it changed length."""
    if not edits:
        return []
    shift: dict[int, int] = {}
    stack: list[tuple[int, int, int]] = []  # (row, col, delta) of open brackets
    lines_done: set[int] = set()
    extra = []
    for t in toks:
        row = t.start[0]
        if row not in lines_done and t.type not in (tokenize.NL, tokenize.NEWLINE, tokenize.INDENT,
                                                    tokenize.DEDENT, tokenize.ENDMARKER):
            lines_done.add(row)
            if stack and stack[-1][0] < row and t.start[1] == stack[-1][1] + 1 and stack[-1][2]:
                d = stack[-1][2]
                line_start = offsets[row - 1]
                if d > 0 or t.start[1] >= -d:
                    shift[row] = d
                    extra.append((line_start, line_start + max(0, -d), " " * max(0, d)))
        if t.type == tokenize.OP and t.string in "([{":
            here = offsets[row - 1] + t.start[1]
            d = shift.get(row, 0) + sum(len(new) - (end - start) for start, end, new in edits
                                        if offsets[row - 1] <= start and end <= here)
            stack.append((row, t.start[1], d))
        elif t.type == tokenize.OP and t.string in ")]}" and stack:
            stack.pop()
    return extra


# ---- import order -----------------------------------------------------------------------------

FIRST_PARTY = {"api", "assets", "bench", "commerce", "people", "pipelines", "resources", "sandbox", "sensors",
               "settings", "storehouse", "tests", "warehouse"}
MOVED_TOPS = ("commerce", "settings")


def sort_imports(text: str) -> str:
    """Re-sort each block of our top-level imports that names a moved package, as isort would."""
    import ast
    try:
        body = ast.parse(text).body
    except SyntaxError:
        return text
    lines = text.splitlines(keepends=True)
    blocks, block = [], []
    for node in body:
        ours = isinstance(node, ast.ImportFrom) and node.level == 0 and node.module \
            and node.module.split(".")[0] in FIRST_PARTY and node.col_offset == 0
        if ours and block and node.lineno == block[-1].end_lineno + 1:
            block.append(node)
            continue
        if block:
            blocks.append(block)
        block = [node] if ours else []
    if block:
        blocks.append(block)
    for block in reversed(blocks):
        if not any(n.module.split(".")[0] in MOVED_TOPS or n.module.startswith(("assets.orders", "pipelines.orders",
                   "warehouse.tables.orders")) for n in block):
            continue
        units = ["".join(lines[n.lineno - 1:n.end_lineno]) for n in block]
        ordered = [u for _, u in sorted(zip([n.module for n in block], units), key=lambda p: p[0])]
        lines[block[0].lineno - 1:block[-1].end_lineno] = ordered
    return "".join(lines)


# ---- what no general rule says -----------------------------------------------------------------

FIXUPS: dict[str, list[tuple[str, str]]] = {
    # the path parameter is the slug: named after the {tenant} it fills, not the Storefront it finds
    "api/deps.py": [
        (r"def get_storefront\(storefront: TenantSlug", "def get_storefront(tenant: TenantSlug"),
        (r"services\.storefronts\.get\(storefront\)", "services.storefronts.get(tenant)"),
        (r"\{storefront\[:64\]!r\}", "{tenant[:64]!r}"),
        (r"def get\(storefront: str, services: Services\) -> Storefront:\n(\s*)return get_storefront\(storefront, ",
         r"def get(tenant: str, services: Services) -> Storefront:\n\1return get_storefront(tenant, "),
        (r'\{"shop": tenant_slug\(', '{"tenant": tenant_slug('),
        (r'\{"storefront": tenant_slug\(', '{"tenant": tenant_slug('),
    ],
    "api/routes/catalog.py": [(r"\bCatalog\(storefront=", "Catalog(tenant=")],
    "tests/test_api_docs.py": [  # the staff routes' {tenant} is the same slug, described by their own text
        (r'p\["name"\] == "shop"', 'p["name"] == "tenant"'),
        (r'storefronts = \[p for ops in spec\["paths"\]\.values\(\) for op in ops\.values\(\) '
         r'for p in op\.get\("parameters", \[\]\)\n\s*if p\["name"\] == "tenant"\]',
         'storefronts = [p for path, ops in spec["paths"].items() if path.startswith("/shops/") for op in ops.values()\n'
         '                   for p in op.get("parameters", []) if p["name"] == "tenant"]'),
    ],
    "tests/test_marts.py": [(r'/ "shop" /', '/ "orders" /')],
    "assets/orders.py": [(r'(GROUP(?:, \w+)* = )"shop"', r'\1"orders"')],
    "pipelines/definitions.py": [(r'(\n\s*)"shop": dg\.FreshnessPolicy', r'\1"orders": dg.FreshnessPolicy')],
    "tests/test_layout.py": [
        (r'"shop"', '"commerce"'),
        (r'SETTINGS = "settings"  # the one leaf of the CLI package everything may read',
         'SETTINGS = "settings"  # the leaf package every layer may read'),
        (r'ROOT / "storehouse" / "settings\.py"', 'ROOT / "settings" / "__init__.py"'),
    ],
    "README.md": [  # the flow diagram's right column, four characters wider with commerce/
        (r"(?m)^(.*→ validate) {12}(provisioning with failover)", r"\1                \2"),
        (r"(?m)^(.*→ upsert) {10}(run by api/)", r"\1              \2"),
        (r"(?m)^ {57}(details, limits\))", r"                                                             \1"),
    ],
    "pyproject.toml": [(r'"shop\*"', '"commerce*"'), (r"\|shop\|", "|commerce|")],
}


def ensure(path: str, text: str) -> str:
    """Insertions a pattern cannot make idempotent by itself."""
    if path == "tests/test_layout.py":
        text = re.sub(r"OURS = \{(?![^}]*\"settings\")", 'OURS = {"settings", ', text, count=1)
        if '"settings": set()' not in text:
            text = text.replace("ALLOWED = {\n", 'ALLOWED = {\n    "settings": set(),  # the leaf: every layer reads it, it reads none of ours\n', 1)
    if path == "pyproject.toml":
        text = re.sub(r'(include = \[)(?![^\]]*"settings\*")', r'\1"settings*", ', text, count=1)
        text = re.sub(r"\(((?:[a-z]+\|)+[a-z]+)\)(?=\(\\\\\.\|\$\))",
                      lambda m: "(" + "|".join(sorted(set(m.group(1).split("|")) | {"settings"})) + ")", text)
    return text


def rewrite(path: str) -> bool:
    file = ROOT / path
    if path.startswith(UNTOUCHED):
        return False
    is_python = path.endswith(".py")
    if not is_python and file.suffix not in TEXT_SUFFIXES and path not in TEXT_NAMES:
        return False
    try:
        before = file.read_text()
    except (UnicodeDecodeError, IsADirectoryError):
        return False
    if is_python:
        text = rewrite_python(before, path)
        if text != before:
            text = sort_imports(text)
        if not path.startswith(PROVIDER_FILES + HISTORY):
            text = re.sub(r'\["shop", "', '["orders", "', text)  # Dagster asset keys: ["shop", "stuck_orders"]
    elif path.startswith(HISTORY):
        text = before
    else:
        text = prose(before, path)
    for pattern, new in FIXUPS.get(path, []):
        text = re.sub(pattern, new, text)
    text = ensure(path, text)
    if text != before:
        file.write_text(text)
        return True
    return False


# ---- the one comment in the database that spells catalogue -----------------------------------------

VERSIONS = "warehouse/migrations/versions"
COMMENT_REVISION = "0011_products_catalog_comment"
PRODUCTS_COMMENT = "Every tenant's catalogue from its POS or Portaus, normalised to one model."
MIGRATION = '''"""pos: the products table's comment spells catalog (one spelling, issue 11)

Written by tools/rename.py on the newest revision of the pos branch it found. Only the comment
changes (PostgreSQL keeps table comments; SQLite has none).

Revision ID: {revision}
Revises: {down}
Create Date: 2026-12-06
"""

from alembic import op

revision = "{revision}"
down_revision = "{down}"
branch_labels = None
depends_on = None

OLD = "{old}"
NEW = "{new}"


def upgrade() -> None:
    if op.get_bind().dialect.supports_comments:
        op.create_table_comment("products", NEW, existing_comment=OLD)


def downgrade() -> None:
    if op.get_bind().dialect.supports_comments:
        op.create_table_comment("products", OLD, existing_comment=NEW)
'''


def pos_head() -> str:
    """The newest revision whose down revisions reach ``0004_pos`` (the branch that made ``products``)."""
    parents: dict[str, tuple[str, ...]] = {}
    for file in sorted((ROOT / VERSIONS).glob("*.py")):
        text = file.read_text()
        rev = re.search(r"^revision\s*=\s*['\"]([^'\"]+)", text, re.M)
        down = re.search(r"^down_revision\s*=\s*(.+)$", text, re.M)
        if rev:
            parents[rev.group(1)] = tuple(re.findall(r"['\"]([^'\"]+)['\"]", down.group(1) if down else ""))
    children = {p for ps in parents.values() for p in ps}

    def reaches(rev: str) -> bool:
        return rev == "0004_pos" or any(reaches(p) for p in parents.get(rev, ()))

    heads = sorted(r for r in parents if r not in children and reaches(r))
    if len(heads) != 1:
        sys.exit(f"rename: the pos branch has {len(heads) or 'no'} heads ({', '.join(heads)}): merge them first")
    return heads[0]


def comment_migration() -> None:
    if any(COMMENT_REVISION in f.read_text() for f in (ROOT / VERSIONS).glob("*.py")):
        return
    path = f"{VERSIONS}/{COMMENT_REVISION}.py"
    down = pos_head()
    (ROOT / path).write_text(MIGRATION.format(revision=COMMENT_REVISION, down=down, old=PRODUCTS_COMMENT,
                                              new=catalog(PRODUCTS_COMMENT)))
    git("add", path)
    print(f"wrote {path} (after {down})")


def main() -> None:
    if not (ROOT / ".git").exists() or not (ROOT / "pyproject.toml").exists():
        sys.exit("rename: run from the repository root")
    do_moves()
    comment_migration()
    learn_modules()
    path_rules_cache.extend(path_rules())
    changed = [p for p in tracked() if rewrite(p)]
    for path in changed:
        print(f"rewrote {path}")
    print(f"rename: {len(changed)} files rewritten" if changed else "rename: nothing to change")


if __name__ == "__main__":
    main()
