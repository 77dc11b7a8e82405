//! `coplan profiles list`: the profiles this server validates against (the StructureDefinitions
//! shipped in `profiles/`, `rest/profiles.rs`), one per line — canonical, resource type, title,
//! and the profile it derives from. Needs no database.

#[derive(clap::Subcommand)]
pub enum ProfilesCommand {
    /// List the profiles writes and `$validate` are checked against.
    List,
}

pub fn run(command: ProfilesCommand) -> Result<(), String> {
    let ProfilesCommand::List = command;
    print!("{}", listing());
    Ok(())
}

/// The listing, a line per profile, sorted by canonical URL.
fn listing() -> String {
    let set = coplan::rest::profiles::profile_set();
    let mut lines: Vec<String> = set
        .profiles()
        .map(|p| {
            format!(
                "{}\t{}\t{}\tbase {}\n",
                p.canonical(),
                p.type_name,
                p.title.clone().or(p.name.clone()).unwrap_or_default(),
                p.base_definition.clone().unwrap_or_default()
            )
        })
        .collect();
    lines.sort();
    lines.concat()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    #[test]
    fn the_listing_names_us_core_and_coplan_profiles() {
        let listing = super::listing();
        assert!(listing.contains(
            "http://coplan.dev/fhir/StructureDefinition/coplan-shared-careplan|0.1.0\tCarePlan\tCoplan Shared Care Plan\tbase http://hl7.org/fhir/us/core/StructureDefinition/us-core-careplan\n"
        ), "{listing}");
        assert!(
            listing.contains("http://hl7.org/fhir/us/core/StructureDefinition/us-core-goal"),
            "{listing}"
        );
        assert_eq!(listing.lines().count(), 13, "{listing}");
    }
}
