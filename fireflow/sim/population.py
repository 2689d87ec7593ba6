"""The population a campaign works on: towns, communities and property companies.

A population is loaded from a CSV shaped like the plan's Annex 4 initial survey
(附件4 长乐区物业在管小区消防专项联合整治初步摸底), or generated from a seed with
stated parameters (:class:`PopulationParams`, Changle-sized by default).

The CSV has one row per community; headers are matched after NFKC
normalisation (so full-width and half-width brackets are the same), Chinese or
English:

=====================  ==============  ========  ==========================================
column                 English alias   required  meaning
=====================  ==============  ========  ==========================================
``乡镇（街道）``         ``town``        yes       the town (sub-district) the community is in
``小区名称``             ``community``   yes       the community's name
``物业服务企业``         ``company``     no        the property-service company (empty: none)
``户数``                 ``households``  no        households (a whole number; empty: unknown)
``楼栋数``               ``buildings``   no        buildings (a whole number; empty: unknown)
``编号``                 ``id``          no        a community id (default ``C00001``, ... by row)
=====================  ==============  ========  ==========================================

Other columns (``序号``, ``备注``, ...) are ignored.  The file is UTF-8, with or
without a byte-order mark (as Excel writes it).

>>> pop = generate_population(30, seed=1)
>>> len(pop), len(pop.towns), pop.communities[0].id
(30, 18, 'C00001')
>>> pop == generate_population(30, seed=1)
True
"""

from __future__ import annotations

import hashlib
import itertools
import math
import os
import random
import unicodedata
from collections.abc import Iterable, Sequence
from pathlib import Path

import attrs

from fireflow import output
from fireflow._input import MAX_INPUT_BYTES, csv_rows, read_text
from fireflow.errors import InputLimitExceeded, InvalidArgument
from fireflow.text import check_name

__all__ = [
    "CHANGLE_TOWNS",
    "CSV_COLUMNS",
    "Community",
    "Population",
    "PopulationParams",
    "generate_population",
    "load_population",
    "parse_population",
]

#: The 18 towns (4 sub-districts, 12 towns, 2 townships) of Changle District, with a
#: weight for their share of property-managed communities (the urban sub-districts
#: hold most of them).  The weights are an illustration, not survey data.
CHANGLE_TOWNS: tuple[tuple[str, float], ...] = (
    ("吴航街道", 0.17),
    ("航城街道", 0.14),
    ("营前街道", 0.10),
    ("漳港街道", 0.07),
    ("首占镇", 0.07),
    ("金峰镇", 0.07),
    ("玉田镇", 0.04),
    ("松下镇", 0.03),
    ("江田镇", 0.03),
    ("古槐镇", 0.04),
    ("文武砂镇", 0.03),
    ("鹤上镇", 0.05),
    ("湖南镇", 0.03),
    ("文岭镇", 0.03),
    ("梅花镇", 0.03),
    ("潭头镇", 0.03),
    ("罗联乡", 0.02),
    ("猴屿乡", 0.02),
)

#: The CSV columns written by :meth:`Population.to_csv`, in order.
CSV_COLUMNS: tuple[str, ...] = (
    "编号",
    "乡镇（街道）",
    "小区名称",
    "物业服务企业",
    "户数",
    "楼栋数",
)

_ALIASES: dict[str, str] = {
    "乡镇(街道)": "town",
    "乡镇": "town",
    "街道": "town",
    "town": "town",
    "小区名称": "community",
    "小区": "community",
    "community": "community",
    "物业服务企业": "company",
    "物业企业": "company",
    "物业公司": "company",
    "company": "company",
    "户数": "households",
    "households": "households",
    "楼栋数": "buildings",
    "栋数": "buildings",
    "buildings": "buildings",
    "编号": "id",
    "id": "id",
}
_LABELS = {
    "town": "乡镇（街道） (town)",
    "community": "小区名称 (community)",
    "company": "物业服务企业 (company)",
    "households": "户数 (households)",
    "buildings": "楼栋数 (buildings)",
    "id": "编号 (id)",
}

#: Columns holding ids and names, checked with fireflow.text.check_name.
_NAMES = frozenset({"town", "community", "company", "id"})

_NAME_HEADS = (
    "金", "华", "海", "阳", "福", "榕", "翠", "锦", "滨", "江", "东", "南", "新", "明", "盛",
    "嘉", "和", "鑫", "龙", "凤", "世", "中", "天", "航", "吴", "丽", "荣", "融", "泰", "恒",
)  # fmt: skip
_NAME_TAILS = (
    "峰", "城", "湾", "景", "苑", "都", "园", "庭", "悦", "府", "港", "源", "山", "湖", "洲",
    "岸", "辉", "星", "隆", "安", "兴", "邦", "桥", "林", "泉", "庐", "坊", "汇", "宸", "澜",
)  # fmt: skip
_NAME_KINDS = ("小区", "花园", "家园", "新村", "公寓", "雅居", "名城", "华府", "广场", "山庄")
_COMPANY_KINDS = ("物业管理有限公司", "物业服务有限公司", "物业发展有限公司")


@attrs.frozen
class Community:
    """A property-managed community (小区) of the population.

    ``company`` is the property-service company (物业服务企业); empty when the
    community has none.  ``households`` and ``buildings`` are 0 when unknown.
    """

    id: str
    name: str
    town: str
    company: str = ""
    households: int = 0
    buildings: int = 0


@attrs.frozen
class Population:
    """Communities in a fixed order; towns and companies in order of first appearance.

    ``source`` says where the population came from (a file, or the generator
    and its seed).
    """

    communities: tuple[Community, ...]
    source: str = ""

    def __attrs_post_init__(self) -> None:
        if not self.communities:
            raise InvalidArgument("population", "a population needs at least one community")
        seen: dict[str, int] = {}
        for i, c in enumerate(self.communities):
            if c.id in seen:
                raise InvalidArgument(
                    "population", f"duplicate community id {c.id!r} (rows {seen[c.id]} and {i})"
                )
            seen[c.id] = i

    def __len__(self) -> int:
        return len(self.communities)

    @property
    def towns(self) -> tuple[str, ...]:
        """The towns, in order of first appearance."""
        return tuple(dict.fromkeys(c.town for c in self.communities))

    @property
    def companies(self) -> tuple[str, ...]:
        """The property companies (empty names left out), in order of first appearance."""
        return tuple(dict.fromkeys(c.company for c in self.communities if c.company))

    def to_csv(self, path: str | os.PathLike[str] | None = None) -> str:
        """The population as Annex 4-shaped CSV text; also written to ``path``.

        The text is CSV for people (:func:`fireflow.output.csv_bytes`): CRLF
        line ends, and names that a spreadsheet would run as a formula get a
        leading ``'``.  The file is written atomically, with a byte-order
        mark so that Excel and WPS open it as UTF-8; :func:`load_population`
        reads it back equal (but for ``source``) as long as no name starts
        with a formula character or ``'``.
        """
        rows = [
            (c.id, c.town, c.name, c.company, c.households or "", c.buildings or "")
            for c in self.communities
        ]
        data = output.csv_bytes(rows, header=CSV_COLUMNS)
        if path is not None:
            output.write_bytes(path, data)
        return data.decode("utf-8-sig")


@attrs.frozen(kw_only=True)
class PopulationParams:
    """The stated parameters of a generated population (all have Changle-sized defaults).

    * ``towns``: town names and weights (share of communities); the default is
      Changle's 18 towns (:data:`CHANGLE_TOWNS`).  When more towns are asked
      for than named, the extra ones are called ``乡镇00019``, ... with the mean
      weight.
    * ``communities_per_town``: used when :func:`generate_population` is not
      told how many towns: ``ceil(communities / communities_per_town)``, at
      least the named towns (Changle: 300 / 18, about 17).
    * ``communities_per_company``: mean communities a property company manages
      (3.0: about 100 companies for 300 communities).
    * ``company_share_exponent``: company market shares follow a Zipf law
      ``1 / rank ** exponent`` (0.8: a few large companies, a long tail).
    * ``self_managed_share``: share of communities without a property company
      (0.0: every community of the Annex 4 list is property-managed).
    * ``households_median``, ``households_sigma``: households per community,
      log-normal (median 400, sigma 0.6), clipped to 40..4000.
    * ``households_per_building``: median households per building (70),
      log-normal with sigma 0.3.
    """

    towns: tuple[tuple[str, float], ...] = CHANGLE_TOWNS
    communities_per_town: float = 300 / 18
    communities_per_company: float = 3.0
    company_share_exponent: float = 0.8
    self_managed_share: float = 0.0
    households_median: float = 400.0
    households_sigma: float = 0.6
    households_per_building: float = 70.0

    def __attrs_post_init__(self) -> None:
        if not self.towns or any(w <= 0 for _, w in self.towns):
            raise InvalidArgument("towns", "need at least one town, each with a positive weight")
        for name in ("communities_per_town", "communities_per_company", "households_median"):
            if getattr(self, name) <= 0:
                raise InvalidArgument(name, "must be positive")
        if not 0 <= self.self_managed_share <= 1:
            raise InvalidArgument("self_managed_share", "must be between 0 and 1")


def _rng(seed: int, stream: str) -> random.Random:
    digest = hashlib.sha256(f"fireflow.sim.population/{seed}/{stream}".encode()).digest()
    return random.Random(int.from_bytes(digest[:16], "big"))  # noqa: S311 (simulation, not secrets)


def _unique(name: str, taken: dict[str, int]) -> str:
    n = taken.get(name, 0)
    taken[name] = n + 1
    return name if n == 0 else f"{name}{n + 1}期"


#: The most communities :func:`generate_population` draws (a country's worth: about a
#: quarter of China's property-managed communities; see docs/security.md).
MAX_POPULATION = 1_000_000


def generate_population(
    communities: int = 300,
    *,
    seed: int = 2022,
    towns: int | None = None,
    params: PopulationParams | None = None,
) -> Population:
    """A population drawn from ``seed`` (same arguments, same population, in any process).

    ``communities`` communities spread over ``towns`` towns (default: the 18
    towns of Changle up to about 300 communities, then one town per
    ``params.communities_per_town``).  Every town gets at least one community
    when there are enough; the rest follow the town weights.  Names are
    invented from a fixed syllable list (they are not real communities).
    """
    p = params or PopulationParams()
    if isinstance(communities, bool) or not isinstance(communities, int) or communities < 1:
        raise InvalidArgument(
            "communities", f"expected a positive whole number, got {communities!r}"
        )
    if communities > MAX_POPULATION:
        raise InputLimitExceeded(
            "communities", f"{communities} communities (at most {MAX_POPULATION:,})"
        )
    if towns is None:
        towns = max(len(p.towns), math.ceil(communities / p.communities_per_town))
    if isinstance(towns, bool) or not isinstance(towns, int) or towns < 1:
        raise InvalidArgument("towns", f"expected a positive whole number, got {towns!r}")
    if towns > communities and towns > len(p.towns):
        raise InputLimitExceeded(
            "towns", f"{towns} towns for {communities} communities (at most one per community)"
        )
    named = list(p.towns[:towns])
    mean_weight = sum(w for _, w in p.towns) / len(p.towns)
    town_list = named + [(f"乡镇{i + 1:05d}", mean_weight) for i in range(len(named), towns)]
    weights = [w for _, w in town_list]

    rng_town = _rng(seed, "towns")
    first = list(range(min(towns, communities)))
    rest = rng_town.choices(range(towns), weights=weights, k=communities - len(first))
    town_of = first + rest

    n_companies = max(1, round(communities / p.communities_per_company))
    rng_co = _rng(seed, "companies")
    taken: dict[str, int] = {}
    company_names = [
        _unique(
            "福州"
            + rng_co.choice(_NAME_HEADS)
            + rng_co.choice(_NAME_TAILS)
            + rng_co.choice(_COMPANY_KINDS),
            taken,
        )
        for _ in range(n_companies)
    ]
    shares = list(
        itertools.accumulate(
            1.0 / (rank + 1) ** p.company_share_exponent for rank in range(n_companies)
        )
    )  # cumulative, so that each draw is a bisection (the same draws as weights=...)

    rng_c = _rng(seed, "communities")
    names: dict[str, int] = {}
    drafts: list[tuple[int, int, Community]] = []
    for i in range(communities):
        name = _unique(
            rng_c.choice(_NAME_HEADS) + rng_c.choice(_NAME_TAILS) + rng_c.choice(_NAME_KINDS),
            names,
        )
        managed = rng_c.random() >= p.self_managed_share
        company = rng_c.choices(company_names, cum_weights=shares)[0] if managed else ""
        households = round(rng_c.lognormvariate(math.log(p.households_median), p.households_sigma))
        households = min(4000, max(40, households))
        per_building = rng_c.lognormvariate(math.log(p.households_per_building), 0.3)
        buildings = max(1, round(households / per_building))
        town = town_list[town_of[i]][0]
        drafts.append((town_of[i], i, Community("", name, town, company, households, buildings)))
    drafts.sort(key=lambda d: (d[0], d[1]))
    width = max(5, len(str(communities)))
    out = tuple(attrs.evolve(c, id=f"C{n + 1:0{width}d}") for n, (_, _, c) in enumerate(drafts))
    return Population(
        out, source=f"generated: {communities} communities, {towns} towns, seed {seed}"
    )


def _key(header: str) -> str:
    text = unicodedata.normalize("NFKC", header).strip().lstrip("\ufeff").lower()
    return _ALIASES.get(text.replace(" ", ""), "")


def _whole(value: str, where: str, column: str) -> int:
    text = unicodedata.normalize("NFKC", value).strip().replace(",", "")
    if not text:
        return 0
    try:
        number = int(text)
    except ValueError:
        try:
            as_float = float(text)
        except ValueError:
            as_float = math.nan
        if not as_float.is_integer():
            raise InvalidArgument(
                "population", f"{where}: {_LABELS[column]} must be a whole number, got {value!r}"
            ) from None
        number = int(as_float)
    if number < 0:
        raise InvalidArgument("population", f"{where}: {_LABELS[column]} must not be negative")
    return number


def parse_population(rows: Iterable[Sequence[str]], source: str = "<data>") -> Population:
    """A population from CSV rows (the first row is the header); see the module docs."""
    it = iter(rows)
    header = next(it, None)
    if header is None:
        raise InvalidArgument("population", f"{source}: empty file (no header row)")
    columns: dict[str, int] = {}
    for i, h in enumerate(header):
        key = _key(h)
        if key and key not in columns:
            columns[key] = i
    for required in ("town", "community"):
        if required not in columns:
            raise InvalidArgument(
                "population",
                f"{source}: missing column {_LABELS[required]}; found: {', '.join(header)}",
            )
    out: list[Community] = []
    seen: dict[tuple[str, str], int] = {}
    for line, row in enumerate(it, start=2):
        if not any(cell.strip() for cell in row):
            continue
        where = f"{source}:{line}"

        def cell(key: str, row: Sequence[str] = row, where: str = where) -> str:
            i = columns.get(key)
            if i is None or i >= len(row):
                return ""
            # a cell fireflow's CSV writer neutralised ('=...) reads back as it was written
            value = output.unneutralise(row[i].strip())
            if value and key in _NAMES:
                # one text policy for names: "金峰小区" and "金峰小区\u200b" are not two communities
                try:
                    return check_name(value, _LABELS.get(key, key))
                except InvalidArgument as exc:
                    raise InputLimitExceeded("population", f"{where}: {exc}") from None
            return unicodedata.normalize("NFC", value)

        town, name = cell("town"), cell("community")
        for key, value in (("town", town), ("community", name)):
            if not value:
                raise InvalidArgument("population", f"{where}: {_LABELS[key]} is empty")
        if (town, name) in seen:
            raise InvalidArgument(
                "population",
                f"{where}: {town} {name} is listed twice (first on line {seen[town, name]})",
            )
        seen[town, name] = line
        ident = cell("id") or f"C{len(out) + 1:05d}"
        out.append(
            Community(
                id=ident,
                name=name,
                town=town,
                company=cell("company"),
                households=_whole(cell("households"), where, "households"),
                buildings=_whole(cell("buildings"), where, "buildings"),
            )
        )
    if not out:
        raise InvalidArgument("population", f"{source}: no communities (only a header)")
    return Population(tuple(out), source=source)


def load_population(path: str | os.PathLike[str]) -> Population:
    """Read an Annex 4-shaped CSV file (see the module docs for the columns).

    Errors are :class:`~fireflow.errors.InvalidArgument` with ``field``
    ``population`` and a message naming the file, the line and the column.
    The file is at most :data:`~fireflow._input.MAX_INPUT_BYTES` (checked
    before it is read whole), a field at most
    :data:`~fireflow._input.MAX_CSV_FIELD_CHARS` characters; town, community,
    company and id follow the text policy of :mod:`fireflow.text`
    (:class:`~fireflow.errors.InputLimitExceeded` otherwise).
    """
    p = Path(path)
    text = read_text(p, "population", MAX_INPUT_BYTES)
    return parse_population(csv_rows(text, "population", str(p)), source=str(p))
