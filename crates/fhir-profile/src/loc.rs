//! Locations of element instances as FHIRPath expressions (FHIR R4 operationoutcome.html
//! `issue.expression`, fhirpath.html): `CarePlan.category[0]`, built as a chain on the stack
//! while walking and rendered only when an issue is reported.

/// One step of a location: the root (a resource type) or a member with its array index.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Loc<'a> {
    parent: Option<&'a Loc<'a>>,
    name: &'a str,
    index: Option<usize>,
}

impl<'a> Loc<'a> {
    pub(crate) fn root(name: &'a str) -> Loc<'a> {
        Loc {
            parent: None,
            name,
            index: None,
        }
    }

    /// The member `name` (a JSON name; the `_` of a primitive's extension part is dropped),
    /// item `index` when it is an array.
    pub(crate) fn child(&'a self, name: &'a str, index: Option<usize>) -> Loc<'a> {
        Loc {
            parent: Some(self),
            name: name.strip_prefix('_').unwrap_or(name),
            index,
        }
    }

    /// With array indices: `CarePlan.category[0]`.
    pub(crate) fn render(&self) -> String {
        let mut out = String::new();
        self.write(&mut out, true);
        out
    }

    /// Without array indices, naming the element rather than one instance:
    /// `CareTeam.participant.role`.
    pub(crate) fn render_path(&self) -> String {
        let mut out = String::new();
        self.write(&mut out, false);
        out
    }

    fn write(&self, out: &mut String, indices: bool) {
        if let Some(parent) = self.parent {
            parent.write(out, indices);
            out.push('.');
        }
        out.push_str(self.name);
        if let (true, Some(i)) = (indices, self.index) {
            out.push('[');
            out.push_str(&i.to_string());
            out.push(']');
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_with_and_without_indices() {
        let root = Loc::root("CareTeam");
        let participant = root.child("participant", Some(2));
        let role = participant.child("role", Some(0));
        assert_eq!(role.render(), "CareTeam.participant[2].role[0]");
        assert_eq!(role.render_path(), "CareTeam.participant.role");
        let ext = root.child("_birthDate", None);
        assert_eq!(
            ext.child("extension", Some(1)).render(),
            "CareTeam.birthDate.extension[1]"
        );
    }
}
