"""Synthetic populations: towns, property-managed communities and property companies.

Annex 4 of the plan (初步摸底) lists the district's managed communities; tests
and simulations need lists like it without real data.  :func:`generate_population`
builds one from a seed, reproducibly (a private ``random.Random(seed)``;
never the global generator).

>>> pop = generate_population(7, towns=3, communities=10, companies=4)
>>> len(pop.towns), len(pop.communities), len(pop.companies)
(3, 10, 4)
>>> pop == generate_population(7, towns=3, communities=10, companies=4)
True
>>> c = pop.communities[0]
>>> c.id, c.town in {t.id for t in pop.towns}, c.company in {p.id for p in pop.companies}
('c001', True, True)
"""

from __future__ import annotations

import random

import attrs

__all__ = [
    "Community",
    "Population",
    "PropertyCompany",
    "Town",
    "generate_population",
]

#: Towns and sub-districts of Changle District (乡镇、街道), used as names.
TOWN_NAMES: tuple[str, ...] = (
    "吴航街道",
    "航城街道",
    "营前街道",
    "漳港街道",
    "首占镇",
    "玉田镇",
    "松下镇",
    "江田镇",
    "古槐镇",
    "文武砂镇",
    "鹤上镇",
    "湖南镇",
    "金峰镇",
    "文岭镇",
    "梅花镇",
    "潭头镇",
    "罗联乡",
    "猴屿乡",
)
_FIRST = "金海滨江华锦御景龙凤福泰安康瑞翠香丽阳湖"
_SECOND = "城苑庭湾府园台岸都郡"
_KIND = ("小区", "花园", "新村", "公寓", "家园", "山庄")
_COMPANY = "鑫宏嘉盛恒信诚万达融"


@attrs.frozen
class Town:
    """A town or sub-district (乡镇、街道): it leads the work in its communities."""

    id: str
    name_zh: str


@attrs.frozen
class PropertyCompany:
    """A property-service company (物业服务企业)."""

    id: str
    name_zh: str


@attrs.frozen
class Community:
    """A property-managed community (物业小区) in a town, managed by a company.

    ``new`` marks a newly built community (新建, R-ROUTE-SIGN); ``buildings``
    is a rough size.
    """

    id: str
    name_zh: str
    town: str
    company: str
    new: bool = False
    buildings: int = 1


@attrs.frozen
class Population:
    """The towns, companies and communities of a synthetic district."""

    seed: int
    towns: tuple[Town, ...]
    companies: tuple[PropertyCompany, ...]
    communities: tuple[Community, ...]

    def town(self, town_id: str) -> Town:
        """The town with this id (``KeyError`` if unknown)."""
        for t in self.towns:
            if t.id == town_id:
                return t
        raise KeyError(town_id)

    def communities_in(self, town_id: str) -> tuple[Community, ...]:
        """The communities of one town, in id order."""
        return tuple(c for c in self.communities if c.town == town_id)

    def managed_by(self, company_id: str) -> tuple[Community, ...]:
        """The communities one company manages, in id order."""
        return tuple(c for c in self.communities if c.company == company_id)


def generate_population(
    seed: int,
    *,
    towns: int = 5,
    communities: int = 31,
    companies: int = 8,
    new_share: float = 0.2,
) -> Population:
    """A reproducible district: the same arguments give the same population.

    Every town and every company gets at least one community when there are
    enough communities; names are unique.  ``new_share`` is the share of
    communities marked new (新建).
    """
    if not 1 <= towns <= len(TOWN_NAMES):
        raise ValueError(f"towns must be 1..{len(TOWN_NAMES)}, got {towns}")
    if communities < 0 or companies < 1:
        raise ValueError("need communities >= 0 and companies >= 1")
    if not 0.0 <= new_share <= 1.0:
        raise ValueError(f"new_share must be between 0 and 1, got {new_share}")
    rnd = random.Random(seed)  # noqa: S311 (test data, not cryptography)
    town_names = rnd.sample(TOWN_NAMES, towns)
    the_towns = tuple(Town(f"t{i + 1:02d}", name) for i, name in enumerate(town_names))
    the_companies = tuple(
        PropertyCompany(
            f"p{i + 1:02d}",
            f"{_COMPANY[i % len(_COMPANY)]}{_FIRST[rnd.randrange(len(_FIRST))]}"
            f"物业服务有限公司{'' if i < len(_COMPANY) else i // len(_COMPANY) + 1}",
        )
        for i in range(companies)
    )
    used: set[str] = set()
    out: list[Community] = []
    for i in range(communities):
        town = the_towns[i] if i < towns else rnd.choice(the_towns)
        company = the_companies[i] if i < companies else rnd.choice(the_companies)
        name = ""
        for _ in range(20):
            name = rnd.choice(_FIRST) + rnd.choice(_SECOND) + rnd.choice(_KIND)
            if name not in used:
                break
        while name in used:  # many communities: number the name
            name = f"{name}{len(used)}"
        used.add(name)
        out.append(
            Community(
                id=f"c{i + 1:03d}",
                name_zh=name,
                town=town.id,
                company=company.id,
                new=rnd.random() < new_share,
                buildings=rnd.randint(1, 30),
            )
        )
    return Population(seed, the_towns, the_companies, tuple(out))
