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

    /// Every element of this type, in model order (choice variants by their JSON names), for
    /// code that maps profile paths such as `Observation.value[x]` onto JSON names.
    pub fn elements(self) -> impl Iterator<Item = ElementDef> + 'static {
        let def = &model().types[self.0];
        def.elements
            .iter()
            .filter_map(move |el| self.element(&el.name))
    }

    /// Does the base model require the element `name` (minimum cardinality 1)? `name` is a JSON
    /// name or a `[x]` group name (`value` on Observation.component).
    pub fn is_required(self, name: &str) -> bool {
        let def = &model().types[self.0];
        def.required.iter().any(|&i| def.elements[i].name == name)
            || def.choices.iter().any(|c| c.required && c.name == name)
    }

    /// The value set of the base model's required binding on the code element `name`
    /// (`http://hl7.org/fhir/ValueSet/request-status` for CarePlan `status`).
    pub fn required_binding(self, name: &str) -> Option<&'static str> {
        let m = model();
        let el = m.types[self.0].element(name)?;
        el.binding.map(|b| m.value_sets[b].url.as_str())
    }

    /// Is `group` the name of a `[x]` choice of this type (`deceased` on Patient)?
    pub fn is_choice_group(self, group: &str) -> bool {
        model().types[self.0]
            .choices
            .iter()
            .any(|c| c.name == group)
    }
}

/// Is `code` in the base model's enumerated value set `url` (one bound, required, to a code
/// element of R4, e.g. `http://hl7.org/fhir/ValueSet/goal-status`)? `None` when the model does
/// not hold that value set.
pub fn core_value_set_contains(url: &str, code: &str) -> Option<bool> {
    model()
        .value_sets
        .iter()
        .find(|vs| vs.url == url)
        .map(|vs| vs.codes.contains(code))
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
        let value_variants: Vec<&str> = ComplexType::named("Observation")
            .unwrap()
            .elements()
            .filter(|e| e.choice_group == Some("value"))
            .map(|e| e.name)
            .collect();
        assert_eq!(value_variants.len(), 11);
        assert!(value_variants.contains(&"valueQuantity"));
        let plan = ComplexType::named("CarePlan").unwrap();
        assert!(plan.is_required("status") && !plan.is_required("category"));
        assert!(ComplexType::named("Observation.component")
            .unwrap()
            .is_required("code"));
        assert!(ComplexType::named("Extension").unwrap().is_required("url"));
        assert_eq!(
            plan.required_binding("status"),
            Some("http://hl7.org/fhir/ValueSet/request-status")
        );
        assert_eq!(plan.required_binding("category"), None);
        assert_eq!(
            core_value_set_contains("http://hl7.org/fhir/ValueSet/goal-status", "active"),
            Some(true)
        );
        assert_eq!(
            core_value_set_contains("http://hl7.org/fhir/ValueSet/goal-status", "banana"),
            Some(false)
        );
        assert_eq!(core_value_set_contains("http://example.org/vs", "x"), None);
        assert!(ComplexType::named("Nope").is_none());
    }
}
