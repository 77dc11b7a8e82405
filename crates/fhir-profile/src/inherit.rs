//! Slicing a derived profile inherits (FHIR R4 profiling.html §5.1.0.8: a profile may constrain
//! slices its base defines, and its differential then names only what it changes). A
//! differential that mentions `Observation.category:survey` without repeating the base's
//! `slicing` or the slice's pattern would leave the slice without discriminator values; this
//! pass, run once at load after `baseDefinition`s are linked, copies them from the nearest
//! loaded base that has them: the `slicing` (as open: the base level applies its own rules
//! with all its slices), a slice's `type` (an extension slice's profile), and the fixed value,
//! pattern or binding at each discriminator path.

use crate::element::{Access, Discriminator, DiscriminatorKind, ElemTy, Node, Slicing};
use crate::profile::{Base, Profile};
use crate::tree::Keys;

/// Completes every profile's inherited slicing, bases before the profiles derived from them.
pub(crate) fn inherit_slicing(profiles: &mut [Profile], keys: &mut Keys) {
    let chain = |start: usize, profiles: &[Profile]| -> Vec<usize> {
        let mut out = Vec::new();
        let mut at = start;
        while let Base::Loaded(next) = profiles[at].base {
            if out.contains(&next) || out.len() > profiles.len() {
                break;
            }
            out.push(next);
            at = next;
        }
        out
    };
    let mut order: Vec<(usize, Vec<usize>)> = (0..profiles.len())
        .map(|i| (i, chain(i, profiles)))
        .collect();
    order.sort_by_key(|(_, bases)| bases.len());
    for (i, bases) in order {
        if bases.is_empty() {
            continue;
        }
        let placeholder = Node::new(
            0,
            String::new(),
            String::new(),
            Access::Root(ElemTy::Primitive("string")),
        );
        let mut root = std::mem::replace(&mut profiles[i].root, placeholder);
        let base_roots: Vec<&Node> = bases.iter().map(|&b| &profiles[b].root).collect();
        fill(&mut root, &base_roots, keys);
        profiles[i].root = root;
    }
}

/// The node with element id `id` in a tree.
fn find<'n>(node: &'n Node, id: &str) -> Option<&'n Node> {
    if node.id == id {
        return Some(node);
    }
    if !id.starts_with(node.id.as_str()) {
        return None;
    }
    node.children
        .iter()
        .chain(node.slices.iter())
        .find_map(|n| find(n, id))
}

fn fill(node: &mut Node, bases: &[&Node], keys: &mut Keys) {
    if !node.slices.is_empty() {
        if node.slicing.is_none() {
            let inherited = bases
                .iter()
                .find_map(|b| find(b, &node.id).and_then(|n| n.slicing.clone()));
            node.slicing = inherited.map(|s| Slicing { closed: false, ..s });
        }
        let discriminators: Vec<Discriminator> = match &node.slicing {
            Some(s) => s.discriminators.clone(),
            None if node.is_extension() => vec![Discriminator {
                kind: DiscriminatorKind::Value,
                path: vec!["url".into()],
            }],
            None => Vec::new(),
        };
        for slice in &mut node.slices {
            let base_slices: Vec<&Node> = bases.iter().filter_map(|b| find(b, &slice.id)).collect();
            if slice.types.is_none() {
                slice.types = base_slices.iter().find_map(|b| b.types.clone());
            }
            for d in discriminators
                .iter()
                .filter(|d| d.kind == DiscriminatorKind::Value)
            {
                let source = base_slices
                    .iter()
                    .find_map(|b| b.descend(&d.path).filter(|n| n.fixes_value()));
                if let Some(source) = source {
                    copy_value(slice, source, &d.path, bases, keys);
                }
            }
        }
    }
    for child in node.children.iter_mut().chain(node.slices.iter_mut()) {
        fill(child, bases, keys);
    }
}

/// Gives the node at `path` below `slice` the discriminating value of `source` when it has
/// none, creating the path's nodes (as bare copies of the base's) where the differential did
/// not mention them.
fn copy_value(slice: &mut Node, source: &Node, path: &[String], bases: &[&Node], keys: &mut Keys) {
    let mut node = slice;
    for seg in path {
        let index = match node.children.iter().position(|c| c.answers_to(seg)) {
            Some(i) => i,
            None => {
                let Some(template) = bases.iter().find_map(|b| {
                    find(b, &node.id).and_then(|n| n.children.iter().find(|c| c.answers_to(seg)))
                }) else {
                    return;
                };
                let mut child = Node::new(
                    keys.next(),
                    template.id.clone(),
                    template.name.clone(),
                    template.access.clone(),
                );
                child.repeats = template.repeats;
                child.base_required = template.base_required;
                node.children.push(child);
                node.children.len() - 1
            }
        };
        node = &mut node.children[index];
    }
    if !node.fixes_value() {
        node.fixed = source.fixed.clone();
        node.pattern = source.pattern.clone();
        node.binding = source.binding.clone();
    }
}
