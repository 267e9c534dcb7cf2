"""Admin commands: API keys (create, scope, list, revoke) and stored assets (list, show, delete)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, NoReturn

import typer
from rich.console import Console

from service.cli.app import active_taxonomy, assets_app, console, db_only, id_list, keys_app
from service.settings import get_settings

if TYPE_CHECKING:
    from service.auth.keys import KeyError_, KeyScope


def _key_scope(products: str, therapy_areas: str) -> KeyScope:
    from service.auth.keys import KeyScope

    return KeyScope(id_list(products), id_list(therapy_areas))


def _key_refused(err: KeyError_) -> NoReturn:
    allowed = err.details.get("allowed")
    console.print(f"{err}" + (f" Allowed: {', '.join(allowed)}." if allowed else ""), markup=False)
    raise typer.Exit(2) from err


ProductsOption = Annotated[str, typer.Option(help="Comma-separated product ids (taxonomy values) the key may be "
                                             "shown, e.g. cardiovex,glucora. Rep keys only.")]


AreasOption = Annotated[str, typer.Option(help="Comma-separated therapy-area ids the key may be shown. Rep keys "
                                          "only.")]


@keys_app.command("create")
def keys_create(
    role: Annotated[str, typer.Option(help="admin | content_editor | reviewer | rep")],
    name: Annotated[str, typer.Option(help="Who or what uses the key (shown in the audit log).")] = "",
    products: ProductsOption = "",
    therapy_areas: AreasOption = "",
) -> None:
    """Create a key. It is printed once, to stdout; only its hash is stored."""
    from service.auth.keys import KeyError_, create_key

    settings, db = db_only()
    scope = _key_scope(products, therapy_areas)
    taxonomy = active_taxonomy(settings, db) if not scope.empty else None
    try:
        with db.session() as s:
            created = create_key(s, role, name or role, scope=scope, taxonomy=taxonomy)
    except KeyError_ as err:
        _key_refused(err)
    scoped = f", scope {_scope_text(created.principal.scope.stored())}" if not scope.empty else ""
    console.print(f"key {created.principal.key_id} ({role}{scoped}) created; store it now, it is not shown again:",
                  markup=False)
    typer.echo(created.secret)


@keys_app.command("scope")
def keys_scope(
    key_id: Annotated[str, typer.Argument(help="The key's id (the part after hcp_).")],
    products: ProductsOption = "",
    therapy_areas: AreasOption = "",
) -> None:
    """Replace a rep key's scope (give neither option to lift it). Applies from the key's next request."""
    from service.auth.keys import KeyError_, set_scope

    settings, db = db_only()
    taxonomy = active_taxonomy(settings, db)
    try:
        with db.session() as s:
            row = set_scope(s, key_id, _key_scope(products, therapy_areas), taxonomy, ("cli", "admin"))
    except KeyError_ as err:
        _key_refused(err)
    if row is None:
        console.print(f"no key {key_id}", markup=False)
        raise typer.Exit(1)
    console.print(f"key {key_id} scope: {_scope_text(row.scope)}", markup=False)


def _scope_text(scope: dict[str, list[str]] | None) -> str:
    if not scope:
        return "all products"
    parts = [f"products {','.join(scope['products'])}" if scope.get("products") else "",
             f"therapy areas {','.join(scope['therapy_areas'])}" if scope.get("therapy_areas") else ""]
    return "; ".join(p for p in parts if p)


@keys_app.command("list")
def keys_list() -> None:
    """Keys with their role, scope and state (never the secret)."""
    from rich.table import Table

    from service.auth.keys import list_keys

    _, db = db_only()
    table = Table()
    table.add_column("id", no_wrap=True, min_width=12)  # ids are what `keys revoke` and `keys scope` take
    for column in ("name", "role", "scope", "created", "last used", "revoked"):
        table.add_column(column)
    with db.session() as s:
        rows = list_keys(s)
    for k in rows:
        table.add_row(k.id, k.name, k.role, _scope_text(k.scope), f"{k.created_at:%Y-%m-%d %H:%M}",
                      f"{k.last_used_at:%Y-%m-%d %H:%M}" if k.last_used_at else "-",
                      f"{k.revoked_at:%Y-%m-%d %H:%M}" if k.revoked_at else "")
    Console().print(table)


@keys_app.command("revoke")
def keys_revoke(key_id: Annotated[str, typer.Argument(help="The key's id (the part after hcp_).")]) -> None:
    """Revoke a key: it is refused from the next request on."""
    from service.auth.keys import revoke_key

    _, db = db_only()
    with db.session() as s:
        revoked = revoke_key(s, key_id)
    if not revoked:
        console.print(f"[red]no key {key_id}[/red]")
        raise typer.Exit(1)
    console.print(f"key {key_id} revoked")


@assets_app.command("list")
def assets_list(
    approval_status: Annotated[str | None, typer.Option(help="draft | in_review | approved | withdrawn")] = None,
    needs_review: Annotated[bool, typer.Option(help="Only assets with tags to review.")] = False,
    limit: Annotated[int, typer.Option(help="Most rows shown.")] = 100,
) -> None:
    """Assets (in id order, as the API lists them) with their status and tag counts."""
    from rich.table import Table

    from service.store.assets import STAFF, AssetFilters, list_assets

    _, db = db_only()
    table = Table()
    for column in ("id", "title", "lang", "format", "source", "status", "v", "tags", "to review"):
        table.add_column(column)
    filters = AssetFilters(approval_status=approval_status, needs_review=True if needs_review else None)
    with db.session() as s:
        for a in list_assets(s, filters, STAFF, limit).assets:
            current = [t for t in a.tags if t.status != "edited"]
            flagged = [t for t in a.tags if t.needs_review and t.status == "proposed"]
            table.add_row(a.id, a.title[:50], a.language, a.format, a.source, a.approval_status,
                          str(a.current_version), str(len(current)), str(len(flagged)))
    Console().print(table)


@assets_app.command("show")
def assets_show(asset_id: str) -> None:
    """One asset: metadata, versions and tags with confidence, method and evidence."""
    from rich.table import Table

    from service.store.assets import read_asset

    _, db = db_only()
    with db.session() as s:
        a = read_asset(s, asset_id)
        if a is None:
            console.print(f"[red]no asset {asset_id}[/red]")
            raise typer.Exit(1)
        out = Console()
        out.print(f"[bold]{a.title}[/bold]  {a.id}  {a.format}/{a.language}/{a.source}  {a.approval_status}"
                  f"  valid until {a.valid_until or '-'}  versions {len(a.versions)}  uri {a.uri}")
        table = Table()
        for column in ("id", "dimension", "value", "conf", "method", "status", "review?", "evidence"):
            table.add_column(column)
        for t in a.tags:
            table.add_row(str(t.id), t.dimension, t.value, f"{t.confidence:.2f}", t.method, t.status,
                          "yes" if t.needs_review else "", (t.evidence or "")[:60])
        out.print(table)


@assets_app.command("delete")
def assets_delete(asset_id: str) -> None:
    """Delete an asset with its versions, tags and vectors."""
    from service.runtime import build_components
    from service.store.assets import delete_asset

    components = build_components(get_settings(), with_llm=False)
    try:
        with components.db.session() as s:
            deleted = delete_asset(s, components.vectors, asset_id, "cli", "admin")
        if not deleted:
            console.print(f"[red]no asset {asset_id}[/red]")
            raise typer.Exit(1)
        console.print(f"deleted {asset_id}")
    finally:
        components.close()
