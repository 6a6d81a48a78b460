//! Published transaction templates: immutable once stored.

use mediblock_protocol::ids::{TemplateId, TemplateVersion, UnixMillis};
use mediblock_protocol::template::Template;

use super::{Result, Store, StoreError, conflict_on_unique};

fn parse(json: &str) -> Result<Template> {
    serde_json::from_str(json).map_err(|e| StoreError::Corrupt(format!("templates.spec_json: {e}")))
}

impl Store {
    /// Stores a newly published template; a published `id@version` is a conflict.
    pub async fn insert_template(&self, template: &Template, now: UnixMillis) -> Result<()> {
        let json =
            serde_json::to_string(template).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        sqlx::query(
            "INSERT INTO templates (template_id, version, spec_json, hash, published_at) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(template.reference().id.as_str())
        .bind(i64::from(template.reference().version.get()))
        .bind(json)
        .bind(template.hash().to_vec())
        .bind(i64::try_from(now.0).unwrap_or(i64::MAX))
        .execute(self.pool())
        .await
        .map_err(conflict_on_unique("template version already published"))?;
        Ok(())
    }

    /// A published template by id and version.
    pub async fn template(
        &self,
        id: &TemplateId,
        version: TemplateVersion,
    ) -> Result<Option<Template>> {
        let row: Option<(String,)> = sqlx::query_as(
            "SELECT spec_json FROM templates WHERE template_id = $1 AND version = $2",
        )
        .bind(id.as_str())
        .bind(i64::from(version.get()))
        .fetch_optional(self.pool())
        .await?;
        row.map(|(json,)| parse(&json)).transpose()
    }

    /// Every published template, by id and version.
    pub async fn templates(&self) -> Result<Vec<Template>> {
        let rows: Vec<(String,)> =
            sqlx::query_as("SELECT spec_json FROM templates ORDER BY template_id, version")
                .fetch_all(self.pool())
                .await?;
        rows.iter().map(|(json,)| parse(json)).collect()
    }
}
