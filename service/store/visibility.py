"""What a rep may see: approved, not expired, and (for a scoped key) within the key's products and therapy
areas. Every read path for reps filters through :func:`rep_visible`; the vector store's prefilter uses the
same rule through :func:`scope_tokens`, and SQL re-checks whatever the vectors return.

How a scope reads content (the README's "Scopes" section says the same):
- an asset's **products** are the product its metadata names (the content team's approved claim) and the
  products a reviewer accepted as tags; only when there are none do the engine's proposed product tags count;
- an asset with products is in scope when one of them is an allowed product;
- an asset with no product (disease education, a guideline, news) is in scope when it is in one of the
  allowed therapy areas: tagged with the area, or with a value that implies it (a disease, ``implies``);
- an asset with neither a product nor a therapy area is outside every scope (fail closed).

A key scoped to products is also allowed those products' therapy areas (for product-agnostic content); a
key scoped only to therapy areas is allowed every product that implies one of them.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date

from sqlalchemy import and_, exists, false, func, or_, select
from sqlalchemy.orm import Session, aliased
from sqlalchemy.sql.elements import ColumnElement

from service.core.taxonomy import Taxonomy
from service.store.models import Asset, AssetTag
from service.store.vectors import VectorStore, Where

# Tag statuses that describe an asset (rejected and edited-away tags do not).
ACTIVE_TAG = ("proposed", "accepted")
# The taxonomy dimensions a scope is written in (the default taxonomy's ids).
PRODUCT_DIMENSION = "product"
AREA_DIMENSION = "therapy_area"


@dataclass(frozen=True)
class Scope:
    """A key's scope resolved against the taxonomy: what its holder may be shown."""

    products: frozenset[str]
    areas: frozenset[str]
    area_tags: frozenset[tuple[str, str]]  # (dimension, value) pairs that put content in one of ``areas``

    @property
    def tokens(self) -> list[str]:
        """The vector payload's ``scope`` values this scope admits (see :func:`scope_tokens`)."""
        return sorted([f"product:{p}" for p in self.products] + [f"area:{a}" for a in self.areas])


def _implied_areas(taxonomy: Taxonomy, dimension: str, value: str) -> set[str]:
    """The therapy areas ``dimension:value`` implies (none for a value the taxonomy does not have)."""
    if not taxonomy.has(dimension, value):
        return set()
    return {v for d, v in taxonomy.implications(dimension, value) if d == AREA_DIMENSION}


def resolve_scope(products: Sequence[str], areas: Sequence[str], taxonomy: Taxonomy) -> Scope | None:
    """The scope of a key that lists ``products`` and/or ``areas``; None when it lists neither (unscoped).

    Ids the taxonomy no longer has stay in the scope and simply match nothing, so a taxonomy change can
    narrow what a key sees, never widen it."""
    if not products and not areas:
        return None
    allowed_products = set(products)
    allowed_areas = set(areas)
    if allowed_products:
        for product in allowed_products:
            allowed_areas |= _implied_areas(taxonomy, PRODUCT_DIMENSION, product)
    elif taxonomy.has_dimension(PRODUCT_DIMENSION):
        allowed_products = {v.id for v in taxonomy.dimension(PRODUCT_DIMENSION).values
                            if _implied_areas(taxonomy, PRODUCT_DIMENSION, v.id) & allowed_areas}
    area_tags = {(AREA_DIMENSION, a) for a in allowed_areas}
    for area in allowed_areas:
        area_tags |= {(d, v) for d, v in taxonomy.implied_by(AREA_DIMENSION, area) if d != PRODUCT_DIMENSION}
    return Scope(frozenset(allowed_products), frozenset(allowed_areas), frozenset(area_tags))


# The scope's subqueries read tags through an alias: a query that already selects from asset_tags (the
# matcher's tag channel) would otherwise correlate them to its own tag row instead of all the asset's tags.
_Tag = aliased(AssetTag)


def _current_tag(*conditions: ColumnElement[bool]) -> ColumnElement[bool]:
    return exists().where(_Tag.asset_id == Asset.id, _Tag.version == Asset.current_version, *conditions)


def _product_tag(status: str, values: Iterable[str] | None = None) -> ColumnElement[bool]:
    conditions = [_Tag.dimension == PRODUCT_DIMENSION, _Tag.status == status]
    if values is not None:
        conditions.append(_Tag.value.in_(sorted(values)))
    return _current_tag(*conditions)


def in_scope(scope: Scope) -> ColumnElement[bool]:
    """SQL for "this asset is within ``scope``" (the rule in the module docstring)."""
    named = func.coalesce(Asset.product, "")
    curated = or_(named != "", _product_tag("accepted"))
    has_product = or_(curated, _product_tag("proposed"))
    allowed = sorted(scope.products)
    own_product = or_(named.in_(allowed), _product_tag("accepted", allowed),
                      and_(~curated, _product_tag("proposed", allowed)))
    by_dimension: dict[str, set[str]] = {}
    for dim, value in scope.area_tags:
        by_dimension.setdefault(dim, set()).add(value)
    area = (_current_tag(_Tag.status.in_(ACTIVE_TAG),
                         or_(*(and_(_Tag.dimension == d, _Tag.value.in_(sorted(v)))
                               for d, v in sorted(by_dimension.items()))))
            if by_dimension else false())
    return or_(own_product, and_(~has_product, area))


def rep_visible(scope: Scope | None = None, today: date | None = None) -> ColumnElement[bool]:
    """Approved and not expired ``today`` (default: the day it is; all a rep may ever see), and within ``scope``
    for a scoped key."""
    approved = and_(Asset.approval_status == "approved",
                    or_(Asset.valid_until.is_(None), Asset.valid_until >= (today or date.today())))
    return approved if scope is None else and_(approved, in_scope(scope))


def scope_tokens(session: Session, asset_ids: Sequence[str], taxonomy: Taxonomy | None) -> dict[str, list[str]]:
    """Each asset's ``scope`` payload values for the vector store's prefilter, by the same rule as
    :func:`in_scope`: ``product:<id>`` for its products, or, with none, ``area:<id>`` for its therapy areas.
    A scope admits an asset when the two share a value (:attr:`Scope.tokens`)."""
    out: dict[str, list[str]] = {}
    ids = list(dict.fromkeys(asset_ids))
    for start in range(0, len(ids), 500):
        part = ids[start:start + 500]
        named: dict[str, str | None] = {i: p for i, p in session.execute(select(Asset.id, Asset.product)
                                                                       .where(Asset.id.in_(part)))}
        tags: dict[str, list[tuple[str, str, str]]] = {a: [] for a in named}
        rows = session.execute(select(AssetTag.asset_id, AssetTag.dimension, AssetTag.value, AssetTag.status)
                               .join(Asset, Asset.id == AssetTag.asset_id)
                               .where(AssetTag.asset_id.in_(part), AssetTag.status.in_(ACTIVE_TAG),
                                      AssetTag.version == Asset.current_version))
        for asset_id, dim, value, status in rows:
            tags[asset_id].append((dim, value, status))
        for asset_id, product in named.items():
            out[asset_id] = tokens_of(product, tags[asset_id], taxonomy)
    return out


def tokens_of(named: str | None, tags: list[tuple[str, str, str]], taxonomy: Taxonomy | None) -> list[str]:
    """An asset's scope tokens from the product its metadata names and its active (dimension, value, status) tags."""
    products = {named} if named else set()
    products |= {v for d, v, s in tags if d == PRODUCT_DIMENSION and s == "accepted"}
    if not products:
        products = {v for d, v, _ in tags if d == PRODUCT_DIMENSION}
    if products:
        return sorted(f"product:{p}" for p in products)
    areas = {v for d, v, _ in tags if d == AREA_DIMENSION}
    if taxonomy is not None:
        for dim, value, _ in tags:
            areas |= _implied_areas(taxonomy, dim, value)
    return sorted(f"area:{a}" for a in areas)


def sync_scope_payload(session: Session, vectors: VectorStore, asset_ids: Sequence[str],
                       taxonomy: Taxonomy | None) -> None:
    """Write each asset's scope tokens into its chunk vectors' payload, after its tags or metadata changed
    (in the caller's session, so the tokens reflect its uncommitted writes). The prefilter then follows the
    tags; SQL stays the judge of what is shown, so a payload that lags can hide an asset, never leak one."""
    for asset_id, tokens in scope_tokens(session, asset_ids, taxonomy).items():
        vectors.set_payload(Where(equals={"asset_id": asset_id}), {"scope": tokens})
