//! The R4 base model's element definitions, read-only, for code that edits resources by
//! element name rather than validating them (FHIRPath Patch: whether an element repeats,
//! what type it holds, which `[x]` choice it belongs to).

use crate::model::{model, Kind, Ty};

/// A complex type, backbone element or resource type of the R4 model (`HumanName`,
/// `Patient.contact`, `Patient`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ComplexType(usize);

/// What an element holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ElementType {
    /// A primitive type, by its R4 name (`date`, `markdown`).
    Primitive(&'static str),
    /// A complex type or backbone element.
    Complex(ComplexType),
    /// Any resource (`contained`, `Bundle.entry.resource`, `Parameters.parameter.resource`).
    Resource,
}

/// One element of a [`ComplexType`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ElementDef {
    /// The JSON name (`deceasedBoolean` for a choice variant).
    pub name: &'static str,
    pub ty: ElementType,
    /// Maximum cardinality above 1: a JSON array.
    pub repeats: bool,
    /// The `[x]` group this element is a variant of, without `[x]` (`deceased`).
    pub choice_group: Option<&'static str>,
}

impl ComplexType {
    /// The type named `name` (a data type, a backbone element path, or a resource type).
    pub fn named(name: &str) -> Option<ComplexType> {
        let m = model();
        let i = m.type_index(name)?;
        (m.types[i].kind != Kind::Primitive).then_some(ComplexType(i))
    }

    /// Its name (`HumanName`, `Patient.contact`, `Patient`).
    pub fn name(self) -> &'static str {
        &model().types[self.0].name
    }

    /// A backbone element: content without a type name of its own (fhirpatch.html calls
    /// these anonymous types).
    pub fn is_backbone(self) -> bool {
        model().types[self.0].kind == Kind::Backbone
    }

    /// A resource type.
    pub fn is_resource(self) -> bool {
        model().types[self.0].kind == Kind::Resource
    }

    /// The element with JSON name `name` (`deceasedBoolean`, not the group `deceased`).
    pub fn element(self, name: &str) -> Option<ElementDef> {
        let m = model();
        let def = &m.types[self.0];
        let el = def.element(name)?;
        let ty = match el.ty {
            Ty::Primitive(p) => ElementType::Primitive(p.name()),
            Ty::Complex(i) => ElementType::Complex(ComplexType(i)),
            Ty::Resource => ElementType::Resource,
        };
        Some(ElementDef {
            name: &el.name,
            ty,
            repeats: el.multiple,
            choice_group: el.choice.map(|c| def.choices[c].name.as_str()),
        })
    }

    /// Is `group` the name of a `[x]` choice of this type (`deceased` on Patient)?
    pub fn is_choice_group(self, group: &str) -> bool {
        model().types[self.0]
            .choices
            .iter()
            .any(|c| c.name == group)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn elements_say_type_repetition_and_choice() {
        let patient = ComplexType::named("Patient").unwrap();
        assert!(patient.is_resource() && !patient.is_backbone());
        let name = patient.element("name").unwrap();
        assert!(name.repeats);
        assert_eq!(
            name.ty,
            ElementType::Complex(ComplexType::named("HumanName").unwrap())
        );
        let birth = patient.element("birthDate").unwrap();
        assert_eq!(
            (birth.ty, birth.repeats),
            (ElementType::Primitive("date"), false)
        );
        let deceased = patient.element("deceasedBoolean").unwrap();
        assert_eq!(deceased.choice_group, Some("deceased"));
        assert!(patient.is_choice_group("deceased") && !patient.is_choice_group("name"));
        assert!(patient.element("deceased").is_none());
        assert_eq!(
            patient.element("contained").unwrap().ty,
            ElementType::Resource
        );
        let ElementType::Complex(contact) = patient.element("contact").unwrap().ty else {
            panic!("contact is complex")
        };
        assert!(contact.is_backbone());
        assert_eq!(contact.name(), "Patient.contact");
        assert!(ComplexType::named("string").is_none());
        assert!(ComplexType::named("Nope").is_none());
    }
}
