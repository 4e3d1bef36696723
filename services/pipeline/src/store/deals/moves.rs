//! MoveDealStage, WinDeal, LoseDeal and ReopenDeal: one transaction each,
//! holding the deal's row lock, closing the current stage visit and
//! opening the next, and (winning) creating the order.

use chrono::{DateTime, Utc};
use prost::Message as _;
use rapport_kit::idempotency::Claim;
use rapport_proto::common::v1::ChangeKind;
use rapport_proto::pipeline::v1::Deal;
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use super::{DealRecord, lock_live, log, write_row_entering};
use crate::domain::ids::PipelineId;
use crate::domain::pipeline::StageKind;
use crate::error::Error;
use crate::policy::DEALS_OWNERSHIP as DEALS;
use crate::store::orders_create::{self, NewOrder, NewOrderLine};
use crate::store::pipelines::{StageRef, first_live_stage_of_kind, stage_for_deal};
use crate::store::{Write, now};

/// Where a move goes.
#[derive(Debug, Clone, Copy)]
pub enum Move<'a> {
    /// To a stage: OPEN moves; WON wins; LOST loses (with a reason).
    Stage { stage_id: Uuid, lost_reason: Option<(Uuid, &'a str)> },
    /// Win into the first live WON stage.
    Win,
    /// Lose into the first live LOST stage.
    Lose { lost_reason_id: Uuid, detail: &'a str },
    /// Reopen into this OPEN stage, or the previous one.
    Reopen { stage_id: Option<Uuid> },
}

impl Move<'_> {
    /// The RPC that makes this move (the idempotency key's operation).
    fn operation(&self) -> &'static str {
        match self {
            Move::Stage { .. } => "MoveDealStage",
            Move::Win => "WinDeal",
            Move::Lose { .. } => "LoseDeal",
            Move::Reopen { .. } => "ReopenDeal",
        }
    }
}

fn problem(reason: &str, message: String, kind: &str, subject: Uuid) -> Error {
    Error::precondition(reason, message, kind, &subject.to_string())
}

/// Applies `action` to deal `id` if `etag` is current (or empty), or
/// replays the first answer to the same `request_id`.
pub async fn apply(
    pool: &PgPool,
    id: Uuid,
    etag: &str,
    action: Move<'_>,
    write: Write<'_>,
) -> Result<Deal, Error> {
    let mut tx = pool.begin().await?;
    if let Claim::Replay(response) = write.claim(&mut tx, action.operation()).await? {
        return Deal::decode(response.as_slice())
            .map_err(|err| Error::Internal(anyhow::Error::new(err).context("stored response")));
    }
    let mut record = lock_live(&mut tx, id, etag, |record| {
        write.may_change(&DEALS, super::owned(&record.deal), &["stage_id"]).map_err(Error::from)
    })
    .await?;
    let now = now();
    let open = record.deal.status == "OPEN";
    if !open && !matches!(action, Move::Reopen { .. }) {
        return Err(problem("DEAL_CLOSED", format!("deal {id} is closed; reopen it first"), "DEAL_OPEN", id));
    }
    let pipeline_id = PipelineId::from(record.deal.pipeline_id);
    let mut paths = vec!["stage_id".to_owned()];
    match action {
        Move::Stage { stage_id, lost_reason } => {
            let stage = stage_for_deal(&mut tx, Some(pipeline_id), Some(stage_id.into())).await?;
            match stage.kind {
                StageKind::Won => win(&mut tx, &mut record, &stage, now, write.actor).await?,
                StageKind::Lost => {
                    let Some((reason, detail)) = lost_reason else {
                        return Err(Error::from(crate::domain::Violation::new(
                            "lost_reason_id",
                            "is required to move a deal to a LOST stage",
                        )));
                    };
                    lose(&mut tx, &mut record, &stage, reason, detail).await?;
                }
                StageKind::Open if stage.stage_id.uuid() == record.deal.stage_id => {
                    return Ok(crate::convert::deals::deal_to_proto(&record)?);
                }
                StageKind::Open => enter(&mut record, &stage),
            }
        }
        Move::Win => {
            let stage = first_live_stage_of_kind(&mut tx, pipeline_id, StageKind::Won).await?;
            win(&mut tx, &mut record, &stage, now, write.actor).await?;
        }
        Move::Lose { lost_reason_id, detail } => {
            let stage = first_live_stage_of_kind(&mut tx, pipeline_id, StageKind::Lost).await?;
            lose(&mut tx, &mut record, &stage, lost_reason_id, detail).await?;
        }
        Move::Reopen { stage_id } => {
            if open {
                return Err(problem("DEAL_OPEN", format!("deal {id} is already open"), "DEAL_CLOSED", id));
            }
            let stage = reopen_stage(&mut tx, &record, stage_id).await?;
            if let Some(order_id) = record.deal.order_id {
                orders_create::cancel_for_reopen(&mut tx, order_id, write.actor, now).await?;
            }
            enter(&mut record, &stage);
            let deal = &mut record.deal;
            deal.status = "OPEN".into();
            deal.forecast_category = "PIPELINE".into();
            deal.close_time = None;
            deal.lost_reason_id = None;
            deal.lost_reason_detail.clear();
            deal.order_id = None;
            deal.reopen_stage_id = None;
            paths.extend(["status", "forecast_category", "close_time", "order_id"].map(String::from));
        }
    }
    if record.deal.status != "OPEN" {
        paths.extend(["status", "forecast_category", "close_time"].map(String::from));
    }
    let deal = &mut record.deal;
    deal.stage_enter_time = now;
    deal.last_activity_time = now;
    deal.update_time = now;
    deal.version += 1;
    write_row_entering(&mut tx, &record.deal, write.actor).await?;
    let deal = log(&mut tx, &record, ChangeKind::Updated, write.actor, paths).await?;
    write.record(&mut tx, &deal.encode_to_vec()).await?;
    tx.commit().await?;
    Ok(deal)
}

fn enter(record: &mut DealRecord, stage: &StageRef) {
    record.deal.stage_id = stage.stage_id.uuid();
    record.deal.stage_probability = stage.probability as i16;
}

/// Closes the deal: remembers the OPEN stage to reopen into.
fn close(record: &mut DealRecord, stage: &StageRef, status: &str, category: &str) {
    record.deal.reopen_stage_id = Some(record.deal.stage_id);
    enter(record, stage);
    record.deal.status = status.into();
    record.deal.forecast_category = category.into();
}

async fn win(
    tx: &mut PgConnection,
    record: &mut DealRecord,
    stage: &StageRef,
    now: DateTime<Utc>,
    actor: &str,
) -> Result<(), Error> {
    let deal_id = record.deal.id;
    let company_id = record.deal.company_id.ok_or_else(|| {
        problem(
            "DEAL_COMPANY_REQUIRED",
            format!("deal {deal_id} has no company: set company_id before winning it, accounting needs someone to invoice"),
            "DEAL_COMPANY",
            deal_id,
        )
    })?;
    let lines = if record.lines.is_empty() {
        vec![NewOrderLine {
            product_id: None,
            description: record.deal.title.clone(),
            quantity: "1".into(),
            unit_price_minor: record.deal.amount_minor,
            discount_percent: "0".into(),
            amount_minor: record.deal.amount_minor,
        }]
    } else {
        record
            .lines
            .iter()
            .map(|line| NewOrderLine {
                product_id: line.product_id,
                description: line.description.clone(),
                quantity: crate::convert::deals::canonical(&line.quantity),
                unit_price_minor: line.unit_price_minor,
                discount_percent: crate::convert::deals::canonical(&line.discount_percent),
                amount_minor: line.amount_minor,
            })
            .collect()
    };
    let new = NewOrder {
        deal_id,
        company_id,
        owner_id: record.deal.owner_id.clone(),
        currency_code: record.deal.currency_code.clone(),
        lines,
        total_minor: record.deal.amount_minor,
    };
    let order = orders_create::create_order(tx, &new, actor, now).await?;
    close(record, stage, "WON", "CLOSED");
    record.deal.close_time = Some(now);
    record.deal.order_id = Uuid::parse_str(&order.id).ok();
    Ok(())
}

async fn lose(
    tx: &mut PgConnection,
    record: &mut DealRecord,
    stage: &StageRef,
    lost_reason_id: Uuid,
    detail: &str,
) -> Result<(), Error> {
    let retired: Option<bool> =
        sqlx::query_scalar("SELECT retired FROM lost_reasons WHERE id = $1 FOR SHARE")
            .bind(lost_reason_id)
            .fetch_optional(&mut *tx)
            .await?;
    match retired {
        None => {
            return Err(problem(
                "LOST_REASON_NOT_FOUND",
                format!("lost reason {lost_reason_id} does not exist"),
                "LOST_REASON_LIVE",
                lost_reason_id,
            ));
        }
        Some(true) => {
            return Err(problem(
                "LOST_REASON_RETIRED",
                format!("lost reason {lost_reason_id} is retired; choose a current one"),
                "LOST_REASON_LIVE",
                lost_reason_id,
            ));
        }
        Some(false) => {}
    }
    close(record, stage, "LOST", "OMITTED");
    record.deal.close_time = Some(crate::store::now());
    record.deal.lost_reason_id = Some(lost_reason_id);
    record.deal.lost_reason_detail = detail.to_owned();
    Ok(())
}

/// The OPEN stage a closed deal reopens into: the one asked for, else the
/// one it closed from (or the first live OPEN stage when that is retired).
async fn reopen_stage(
    tx: &mut PgConnection,
    record: &DealRecord,
    asked: Option<Uuid>,
) -> Result<StageRef, Error> {
    let pipeline_id = PipelineId::from(record.deal.pipeline_id);
    let stage = match (asked, record.deal.reopen_stage_id) {
        (Some(stage_id), _) => stage_for_deal(tx, Some(pipeline_id), Some(stage_id.into())).await?,
        (None, Some(previous)) => match stage_for_deal(tx, Some(pipeline_id), Some(previous.into())).await {
            Ok(stage) if stage.kind == StageKind::Open => stage,
            _ => first_live_stage_of_kind(tx, pipeline_id, StageKind::Open).await?,
        },
        (None, None) => first_live_stage_of_kind(tx, pipeline_id, StageKind::Open).await?,
    };
    if stage.kind != StageKind::Open {
        return Err(problem(
            "STAGE_NOT_OPEN",
            format!("stage {} is not an OPEN stage; a deal reopens into an OPEN stage", stage.stage_id),
            "STAGE_OPEN",
            stage.stage_id.uuid(),
        ));
    }
    Ok(stage)
}
