"""Structural observers: automated annotators that get every byte a real annotator gets
(the item page's HTML, every asset it links, the annotator API's JSON of the item, the
practice feedback) and answer a model
simulation item without looking at what the pictures show.

Each one exploits one kind of structural route to the prediction:

(a) ``label_mention``  — a choice's label written somewhere outside the answer options;
(b) ``shared_ids``     — ids (z17, #feature-17, f17 in a URL …) that a choice's surroundings
                         share with the rest of the page;
(c) ``practice_memory`` — what the practice feedback said the model answered, remembered
                         against the page's ids, the place of the answer among the options,
                         and the labels themselves;
(d) ``fixed_place``    — always the option at one place;
(e) ``asset_outlier``  — within one item, an asset whose size or URL singles a choice out.

If a study's pages carry no such route, each stays at chance. :func:`walk` drives the real
annotator endpoints with Django's test client; the observers ride along one annotator, each
deciding on the same bytes.
"""

from __future__ import annotations

import math
import random
import re
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from html.parser import HTMLParser
from urllib.parse import urlsplit

VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}
BLOCKS = {"tr", "li", "article", "figure", "section", "fieldset", "div", "p", "table", "details"}
ID_TOKEN = re.compile(r"[A-Za-z]{0,8}\d+[A-Za-z0-9]*|\d+")
DECIMAL = re.compile(r"[-+]?\d*\.\d+(?:e[-+]?\d+)?")
DECIMAL_ONLY = re.compile(rf"\s*{DECIMAL.pattern}\s*")
PICTURES = {"svg"}  # inline drawings: their numbers are what the picture shows


def is_picture_bytes(s: str) -> bool:
    """An inline image (a data: URL, such as a heatmap's mask): what the picture shows, not
    text; its base64 spells no word or id."""
    return s.startswith("data:")


# -- a small DOM ------------------------------------------------------------------------------
@dataclass
class Node:
    tag: str
    attrs: dict
    parent: "Node | None" = None
    children: list = field(default_factory=list)  # Node or str

    def walk(self):
        """This node and every element under it, in document order (iteratively: a page of
        drawings is thousands of elements deep in generators otherwise)."""
        stack = [self]
        while stack:
            node = stack.pop()
            yield node
            stack.extend(reversed([c for c in node.children if isinstance(c, Node)]))

    def text(self) -> str:
        return " ".join(c if isinstance(c, str) else c.text() for c in self.children)

    def strings(self):
        """Every text and attribute value under this node (what the browser holds of it)."""
        yield from (v for v in self.attrs.values() if v and not is_picture_bytes(v))
        for c in self.children:
            if isinstance(c, str):
                yield c
            else:
                yield from c.strings()

    def ancestors(self):
        n = self.parent
        while n is not None:
            yield n
            n = n.parent

    def within(self, other: "Node") -> bool:
        return self is other or any(a is other for a in self.ancestors())


class _TreeBuilder(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.root = Node("#document", {})
        self.cur = self.root

    def handle_starttag(self, tag, attrs):
        node = Node(tag, {k: v or "" for k, v in attrs}, self.cur)
        self.cur.children.append(node)
        if tag not in VOID:
            self.cur = node

    def handle_startendtag(self, tag, attrs):
        self.cur.children.append(Node(tag, {k: v or "" for k, v in attrs}, self.cur))

    def handle_endtag(self, tag):
        n = self.cur
        while n is not None and n.tag != tag:
            n = n.parent
        if n is not None and n.parent is not None:
            self.cur = n.parent

    def handle_data(self, data):
        if data.strip():
            self.cur.children.append(data)


def parse(html: str) -> Node:
    b = _TreeBuilder()
    b.feed(html)
    return b.root


def id_tokens(strings) -> set[str]:
    """Id-like tokens: words with a digit and whole numbers, from text, attributes and URL
    paths (not query strings: a URL's key is per annotator and says nothing). Decimal
    numbers are measurements (weights, scores), not ids."""
    found = set()
    for s in strings:
        if is_picture_bytes(s) or DECIMAL_ONLY.fullmatch(s):  # (most of an API's values are scores)
            continue
        if s.startswith("/") or s.startswith("http"):
            s = urlsplit(s).path
        s = DECIMAL.sub(" ", s)
        found.update(t.lower() for t in ID_TOKEN.findall(s))
    return found


def json_tree(value, parent: Node, key: str = "") -> Node:
    """JSON as elements, so observers read it as they read HTML: objects and lists are
    blocks, each value (or row of decimal numbers) a leaf holding its text."""
    if isinstance(value, list) and value and all(isinstance(x, float) for x in value):
        # a row of measurements (a heatmap's scores): one leaf of the same text, not an
        # element a number (the same ids and mentions, a fiftieth of the elements)
        node = Node("span", {"data-key": key}, parent)
        node.children.append(" ".join(map(str, value)))
    elif isinstance(value, (dict, list)):
        node = Node("div", {"data-key": key}, parent)
        for k, v in (value.items() if isinstance(value, dict) else enumerate(value)):
            json_tree(v, node, str(k))
    else:
        node = Node("span", {"data-key": key}, parent)
        if value is not None:
            node.children.append(str(value))
    parent.children.append(node)
    return node


# -- what an observer is given ------------------------------------------------------------
@dataclass
class Page:
    html: str
    assets: dict[str, bytes]  # URL as linked -> the bytes served
    json: object = None  # the annotator API's state of the same item
    tree: Node = None
    item: str = ""
    choices: list[str] = field(default_factory=list)  # the options, in the order shown
    answer_region: Node | None = None
    _outside: dict = field(default_factory=dict, repr=False)  # what nodes_outside and mentions computed

    def __post_init__(self):
        self.tree = parse(self.html)
        self.json_root = json_tree(self.json, self.tree, "api") if self.json is not None else None
        inputs = [n for n in self.tree.walk() if n.tag == "input" and n.attrs.get("name") == "choice"]
        self.choices = [n.attrs.get("value", "") for n in inputs]
        item = [n for n in self.tree.walk() if n.tag == "input" and n.attrs.get("name") == "item"]
        self.item = item[0].attrs.get("value", "") if item else ""
        if inputs:
            common = [a for a in inputs[0].ancestors() if all(i.within(a) for i in inputs)]
            self.answer_region = common[0] if common else None

    def documents(self) -> list[Node]:
        return [self.tree] if self.json_root is None else [self.tree, self.json_root]

    def document_of(self, node: Node) -> Node:
        if "json" not in self._outside:  # the API's elements, once per page
            self._outside["json"] = {id(n) for n in self.json_root.walk()} if self.json_root is not None else set()
        return self.json_root if id(node) in self._outside["json"] else self.tree

    def outside(self, node: Node) -> bool:
        return self.answer_region is None or not node.within(self.answer_region)

    def nodes_outside(self, pictures: bool = True):
        """Elements outside the answer options (without inline drawings if not ``pictures``);
        computed once per page (every observer asks, for every choice)."""
        if pictures not in self._outside:
            self._outside[pictures] = [n for n in self.tree.walk() if self.outside(n)
                                       and (pictures or not any(a.tag in PICTURES for a in [n, *n.ancestors()]))]
        return self._outside[pictures]

    def own_strings(self, node: Node) -> list[str]:
        out = [v for v in node.attrs.values() if v and not is_picture_bytes(v)]
        out += [c for c in node.children if isinstance(c, str)]
        return out

    def mentions(self, label: str) -> list[Node]:
        """Elements outside the answer options whose own text or attributes name ``label``
        (computed once per page and label: every observer asks)."""
        key = ("mentions", label)
        if key not in self._outside:
            if "named" not in self._outside:
                # each element's own strings, kept only where some choice may be named: one
                # pass of a pattern of every choice, then the exact test per label on those
                anyone = re.compile("|".join(re.escape(c) for c in sorted(self.choices, key=len, reverse=True))
                                    or "(?!)", re.I)
                self._outside["named"] = [(n, strings) for n in self.nodes_outside()
                                          if (strings := self.own_strings(n)) and any(anyone.search(x) for x in strings)]
            pattern = re.compile(rf"(?<![\w.]){re.escape(label)}(?![\w.])", re.I)
            among = (self._outside["named"] if label in self.choices
                     else [(n, self.own_strings(n)) for n in self.nodes_outside()])
            self._outside[key] = [n for n, strings in among if any(pattern.search(x) for x in strings)]
        return self._outside[key]

    def ids_of(self, node: Node) -> set[str]:
        """The id tokens of an element's own text and attributes (once per page and element)."""
        cache = self._outside.setdefault("ids", {})
        if id(node) not in cache:
            cache[id(node)] = id_tokens(self.own_strings(node))
        return cache[id(node)]

    def ids_under(self, nodes) -> set[str]:
        """The id tokens of everything under ``nodes`` (per block once per page: a count
        label such as "1" makes whole documents its blocks)."""
        cache = self._outside.setdefault("ids_under", {})
        out = set()
        for b in nodes:
            if id(b) not in cache:
                cache[id(b)] = set().union(*(self.ids_of(x) for x in b.walk()))
            out |= cache[id(b)]
        return out

    def container(self, node: Node) -> Node:
        for a in [node, *node.ancestors()]:
            if a.tag in BLOCKS:
                return a
        return self.tree

    def asset_nodes(self) -> list[tuple[Node, str]]:
        out = []
        for n in self.tree.walk():
            for k in ("src", "href"):
                url = n.attrs.get(k, "")
                if url in self.assets:
                    out.append((n, url))
        return out


def chooser_rng(name: str, page: Page) -> random.Random:
    return random.Random(f"{name}:{page.item}")


def argmax_or_random(name: str, page: Page, scores: list[float]) -> str:
    best = max(scores)
    tied = sorted(c for c, s in zip(page.choices, scores) if s == best)  # not the shown order: a draw
    return chooser_rng(name, page).choice(tied)


# -- the observers --------------------------------------------------------------------------
class Observer:
    name = "observer"

    def choose(self, page: Page) -> str:
        raise NotImplementedError

    def feedback(self, page: Page, feedback_html: str) -> None:
        """The practice feedback page after answering ``page``."""


class LabelMention(Observer):
    """(a) The choice whose label is written most often outside the answer options."""

    name = "(a) label mentioned"

    def choose(self, page):
        return argmax_or_random(self.name, page, [len(page.mentions(c)) for c in page.choices])


class SharedIds(Observer):
    """(b) The choice whose surroundings (the block naming it, outside the options) share
    the most ids with the rest of the page."""

    name = "(b) shared ids"

    def choose(self, page):
        # within one document (the HTML page, or the API's JSON): the same thing said twice,
        # once in each, is no link between sections
        scores = [0] * len(page.choices)
        for doc in page.documents():
            blocks = {c: [page.container(n) for n in page.mentions(c) if page.document_of(n) is doc]
                      for c in page.choices}
            tied_to_choice = list({id(b): b for bs in blocks.values() for b in bs}.values())
            # the elements within a block tied to a choice, and those a block is within
            inside = {id(x) for b in tied_to_choice for x in b.walk()}
            above = {id(a) for b in tied_to_choice for a in (b, *b.ancestors())}
            rest = [n for n in page.nodes_outside(pictures=False) if page.document_of(n) is doc
                    and id(n) not in inside and id(n) not in above]
            rest_ids = set().union(*(page.ids_of(n) for n in rest))
            for k, c in enumerate(page.choices):
                scores[k] += len((page.ids_under(blocks[c]) - {c.lower()}) & rest_ids)
        return argmax_or_random(self.name, page, scores)


class PracticeMemory(Observer):
    """(c) Learns from practice feedback: which labels came with which ids on the page
    (weighted by how rare an id is among the practice pages), at which place the model's
    answer stood, and which labels the model gave. Answers by ids, then place, then label."""

    name = "(c) practice memory"

    def __init__(self):
        self.by_id = defaultdict(Counter)
        self.places = Counter()
        self.labels = Counter()
        self.pages = 0

    @staticmethod
    def page_ids(page: Page) -> set[str]:
        return set().union(*(page.ids_of(n) for n in page.nodes_outside(pictures=False)))

    def feedback(self, page, feedback_html):
        text = parse(feedback_html).text()
        said = re.search(r"predicted\s+(.+?)\s+—", text) or re.search(r"predicted\s+(\S+)", text)
        if not said:
            return
        answer = said.group(1).strip()
        if answer not in page.choices:
            return
        self.pages += 1
        for t in self.page_ids(page):
            self.by_id[t][answer] += 1
        self.places[page.choices.index(answer)] += 1
        self.labels[answer] += 1

    def choose(self, page):
        ids = self.page_ids(page)
        by_ids = []
        for c in page.choices:
            score = 0.0
            for t in ids:
                seen = self.by_id.get(t)
                if seen:
                    idf = math.log((self.pages + 1) / sum(seen.values()))
                    score += idf * seen[c] / sum(seen.values())
            by_ids.append(round(score, 9))
        keys = [(s, self.places[k], self.labels[c]) for k, (c, s) in enumerate(zip(page.choices, by_ids))]
        ranked = sorted(set(keys))
        return argmax_or_random(self.name, page, [ranked.index(k) for k in keys])


class FixedPlace(Observer):
    """(d) Always the option at one place (the last one if an item has fewer)."""

    def __init__(self, place: int = 0):
        self.place = place
        self.name = f"(d) place {place + 1}"
        self.shown = {}  # item -> the options in the order shown

    def choose(self, page):
        self.shown[int(page.item)] = list(page.choices)
        return page.choices[min(self.place, len(page.choices) - 1)]


class AssetOutlier(Observer):
    """(e) Within one item: an asset tied to a choice (in the block naming it, or with the
    label in its URL or alt text) whose size stands out; else, a run of sibling assets as
    long as the options whose sizes or URLs single one out, taken in the options' order."""

    name = "(e) asset size/URL"

    def choose(self, page):
        sizes = {u: len(b) for u, b in page.assets.items()}
        nodes = page.asset_nodes()
        tied = {}
        for c in page.choices:
            blocks = [page.container(n) for n in page.mentions(c)]
            lab = re.compile(rf"(?<![\w.]){re.escape(c)}(?![\w.])", re.I)
            tied[c] = [u for n, u in nodes if any(n.within(b) for b in blocks)
                       or lab.search(urlsplit(u).path) or lab.search(n.attrs.get("alt", ""))]
        if any(tied.values()):
            med = sorted(sizes.values())[len(sizes) // 2] if sizes else 0
            return argmax_or_random(self.name, page, [max((abs(sizes[u] - med) for u in tied[c]), default=-1)
                                                       for c in page.choices])
        groups = defaultdict(list)
        for n, u in nodes:
            groups[id(page.container(n))].append(u)
        for urls in groups.values():
            if len(urls) == len(page.choices) and len(set(urls)) == len(urls):
                s = [sizes[u] for u in urls]
                med = sorted(s)[len(s) // 2]
                shape = [re.sub(r"[0-9a-f]{8,}|\d+", "#", urlsplit(u).path) for u in urls]
                odd = [Counter(shape)[x] == 1 and len(set(shape)) > 1 for x in shape]
                return argmax_or_random(self.name, page, [abs(a - med) + 10**9 * o for a, o in zip(s, odd)])
        return argmax_or_random(self.name, page, [0] * len(page.choices))


def all_observers():
    """One of each; the practice-memory observer first (its answers are the ones submitted)."""
    return [PracticeMemory(), LabelMention(), SharedIds(), FixedPlace(), AssetOutlier()]


# -- driving the real annotator endpoints -------------------------------------------------
def fetch_assets(client, html: str) -> dict[str, bytes]:
    """Every same-site resource the page loads (images, scripts, style sheets), fetched as a
    browser would; links to other pages are not followed."""
    urls = set(re.findall(r'\ssrc="(/[^"#]*)"', html))
    urls |= {m for tag in re.findall(r"<link\b[^>]*>", html) for m in re.findall(r'href="(/[^"#]*)"', tag)}
    out = {}
    for u in sorted(urls):
        u = u.replace("&amp;", "&")
        r = client.get(u)
        if u.startswith("/a/"):  # the item's own assets must all be there
            assert r.status_code == 200, (u, r.status_code)
        if r.status_code == 200:
            out[u] = b"".join(r.streaming_content) if r.streaming else r.content
    return out


def walk(client, url: str, observers: list[Observer]) -> dict[str, dict[int, str]]:
    """One annotator (the enrolment at ``url``) from consent to the closing questions. Every
    observer is given the same bytes of every item and decides; the first one's answers are
    submitted (and its practice feedback page is what all of them read). Returns each
    observer's choice per study item."""
    client.post(url, {"form": "consent", "agree": "yes"})
    client.post(url, {"form": "instructions"})
    token = url.rstrip("/").rsplit("/", 1)[-1]
    decisions = {o.name: {} for o in observers}
    while True:
        r = client.get(url)
        assert r.status_code == 200
        html = r.content.decode()
        if 'name="choice"' not in html:
            return decisions
        state = client.get(f"/api/annotate/{token}/")
        assert state.status_code == 200
        page = Page(html, fetch_assets(client, html), state.json())
        for o in observers:
            decisions[o.name][int(page.item)] = o.choose(page)
        fields = {"item": page.item, "choice": decisions[observers[0].name][int(page.item)], "seconds_on_item": "5"}
        if 'name="helpful_page"' in html:
            fields["helpful_page"] = "overview"
        after = client.post(url, fields)
        assert after.status_code == 302, after.content[:500]
        if "/practice/" in after["Location"]:
            fb = client.get(after["Location"])
            assert fb.status_code == 200
            for o in observers:
                o.feedback(page, fb.content.decode())
