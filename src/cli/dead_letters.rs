//! `orderflow dead-letters`: the records nodes set aside, to look at, replay
//! after a fix, or discard.

use chrono::Utc;

use super::table::{Align, Table};
use crate::platforms::taobao::envelope::excerpt;
use crate::store::{DeadLetterState, Store};

/// What `orderflow dead-letters` does.
#[derive(Debug, clap::Args)]
pub struct DeadLettersArgs {
    /// Only this flow's letters.
    #[arg(long)]
    flow: Option<String>,
    /// Only the open ones (not yet replayed or discarded).
    #[arg(long)]
    open: bool,
    /// How many letters, newest first.
    #[arg(long, default_value_t = 20)]
    limit: u32,
    /// Print the whole record of one letter.
    #[arg(long, value_name = "ID", conflicts_with_all = ["replay", "discard"])]
    show: Option<i64>,
    /// Store one letter's order or refund again (after a fix) and mark it replayed.
    #[arg(long, value_name = "ID", conflicts_with = "discard")]
    replay: Option<i64>,
    /// Mark one letter discarded.
    #[arg(long, value_name = "ID")]
    discard: Option<i64>,
}

/// Runs `orderflow dead-letters`.
pub async fn run(args: &DeadLettersArgs, store: &Store) -> anyhow::Result<()> {
    if let Some(id) = args.show {
        let Some(stored) = store.dead_letter(id).await? else { anyhow::bail!("dead letter {id}: no such dead letter") };
        let letter = &stored.letter;
        println!(
            "dead letter {id} ({}): flow {}, node {}, run {}",
            stored.state, letter.flow, letter.node_id, letter.run_id
        );
        println!("at {}: {}", letter.created_at, letter.reason);
        println!("{}", serde_json::to_string_pretty(&letter.record)?);
        return Ok(());
    }
    if let Some(id) = args.replay {
        let outcome = store.replay_dead_letter(id, Utc::now()).await?;
        let written = if outcome.inserted + outcome.updated > 0 { "stored" } else { "not stored: a newer version is" };
        println!("dead letter {id}: replayed, {written}");
        return Ok(());
    }
    if let Some(id) = args.discard {
        store.discard_dead_letter(id, Utc::now()).await?;
        println!("dead letter {id}: discarded");
        return Ok(());
    }
    let state = args.open.then_some(DeadLetterState::Open);
    let letters = store.list_dead_letters(args.flow.as_deref(), state, args.limit).await?;
    if letters.is_empty() {
        println!("no dead letters");
        return Ok(());
    }
    let left = Align::Left;
    let mut table = Table::new(&[
        ("id", Align::Right),
        ("state", left),
        ("at", left),
        ("flow", left),
        ("node", left),
        ("run", left),
    ]);
    for stored in letters {
        let letter = &stored.letter;
        table.row([
            stored.id.to_string(),
            stored.state.as_str().to_owned(),
            letter.created_at.format("%Y-%m-%d %H:%M:%S").to_string(),
            letter.flow.clone(),
            letter.node_id.clone(),
            letter.run_id.clone(),
        ]);
        table.note(format!("  {}", letter.reason));
        table.note(format!("  {}", excerpt(&letter.record.to_string())));
    }
    print!("{}", table.render(""));
    Ok(())
}
