//! Extensions checked against their definitions (FHIR R4 extensibility.html §2.5.0.1,
//! defining-extensions.html): anywhere in the resource, an `extension` or
//! `modifierExtension` whose `url` names a loaded StructureDefinition of type Extension is
//! validated against it (value[x] types, cardinalities, nested extensions, through its
//! baseDefinition chain). Extensions with other URLs are left alone.

use fhir_validate::MAX_DEPTH;
use serde_json::Value;

use crate::element::ElemTy;
use crate::loc::Loc;
use crate::walk::Ctx;

/// Walks `value` (at `loc`) and checks every extension with a loaded definition.
pub(crate) fn check_all<'v>(ctx: &mut Ctx<'_, 'v>, value: &'v Value, loc: &Loc<'_>, depth: usize) {
    if depth > MAX_DEPTH {
        return;
    }
    match value {
        Value::Object(obj) => {
            for (key, member) in obj {
                let is_extension = key == "extension" || key == "modifierExtension";
                match member {
                    Value::Array(items) => {
                        for (i, item) in items.iter().enumerate() {
                            let item_loc = loc.child(key, Some(i));
                            if is_extension {
                                check_one(ctx, item, &item_loc);
                            }
                            check_all(ctx, item, &item_loc, depth + 1);
                        }
                    }
                    Value::Object(_) => check_all(ctx, member, &loc.child(key, None), depth + 1),
                    _ => {}
                }
            }
        }
        Value::Array(items) => {
            for item in items {
                check_all(ctx, item, loc, depth + 1);
            }
        }
        _ => {}
    }
}

/// One extension: validated against its definition when that is loaded.
fn check_one<'v>(ctx: &mut Ctx<'_, 'v>, extension: &'v Value, loc: &Loc<'_>) {
    let Some(url) = extension.get("url").and_then(Value::as_str) else {
        return;
    };
    let set = ctx.set;
    let Some(index) = set.extension(url) else {
        return;
    };
    if let crate::element::Access::Root(ty @ ElemTy::Complex(_)) = set.profiles[index].root.access {
        ctx.apply_chain(index, extension, loc, ty);
    }
}
