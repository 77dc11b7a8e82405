//! Step 1 of the write pipeline: may this caller make this write, and within which limits
//! (SMART App Launch 2.2 scopes, R4 Patient CompartmentDefinition)? A 403 when no scope allows
//! the interaction; a 404 for a target outside the caller's compartments, whether or not it
//! exists (`rest/guard.rs`).

use crate::error::FhirResult;
use crate::policy::{Access, Permission, Rule};
use crate::rest::guard::hidden;
use crate::rest::FhirService;
use crate::store::WriteMethod;

impl FhirService {
    /// The rule a write of `resource_type/id` runs under (`None`: no limit). `fresh`: the id
    /// was minted by this server, so the write can only create.
    pub(crate) async fn authorize(
        &self,
        access: &Access,
        resource_type: &str,
        id: &str,
        method: WriteMethod,
        fresh: bool,
    ) -> FhirResult<Option<Rule>> {
        match method {
            WriteMethod::Create => self.permit(access, resource_type, Permission::Create),
            WriteMethod::Update if fresh => self.permit(access, resource_type, Permission::Create),
            WriteMethod::Update => self.put_rule(access, resource_type, id).await,
            WriteMethod::Patch | WriteMethod::Delete => {
                let permission = if method == WriteMethod::Patch {
                    Permission::Update
                } else {
                    Permission::Delete
                };
                let rule = self.permit(access, resource_type, permission)?;
                if let Some(rule) = &rule {
                    self.check_visible(rule, resource_type, id).await?;
                }
                Ok(rule)
            }
        }
    }

    /// The rule an update (`PUT`) of `resource_type/id` runs under. Under confined access a
    /// resource the caller cannot see is a 404 whether or not it exists, and a client-chosen
    /// id cannot create one (that would reveal which ids are taken).
    async fn put_rule(
        &self,
        access: &Access,
        resource_type: &str,
        id: &str,
    ) -> FhirResult<Option<Rule>> {
        if matches!(access, Access::Unrestricted) {
            return Ok(None);
        }
        let update = self.permit(access, resource_type, Permission::Update);
        let create = self.permit(access, resource_type, Permission::Create);
        if let (Err(denied), Err(_)) = (&update, &create) {
            return Err(denied.clone());
        }
        let exists = self
            .store
            .current_for_write(resource_type, id)
            .await?
            .is_some_and(|c| c.body.is_some());
        match (exists, update, create) {
            (true, Ok(rule), _) => {
                if let Some(rule) = &rule {
                    self.check_visible(rule, resource_type, id).await?;
                }
                Ok(rule)
            }
            (true, Err(denied), Ok(create_rule)) => {
                if let Some(rule) = &create_rule {
                    self.check_visible(rule, resource_type, id).await?;
                }
                Err(denied)
            }
            (false, _, Ok(rule)) if rule.as_ref().is_none_or(|r| r.patients.is_none()) => Ok(rule),
            _ => Err(hidden(resource_type, id)),
        }
    }
}
