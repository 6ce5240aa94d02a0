//! Node types, one file each, and the registry that names them. The contract
//! they keep (the traits, `NodeError`, `BuildContext`) is
//! [`crate::engine::node`]; the sync machinery the order and refund nodes
//! share is [`crate::sync`].
//!
//! A built-in node is one file in this folder holding its settings struct (whose
//! doc comments become its documentation and JSON Schema), its code and its
//! tests, plus one line in [`Registry::builtin`]. A Rhai file in `nodes/` becomes
//! a node type too (see [`custom`]).

pub mod browser;
pub mod custom;
pub mod dedupe;
pub mod fetch_detail;
pub mod fetch_full;
pub mod fetch_increment;
pub mod fetch_refunds;
pub mod filter;
pub mod log;
pub mod logistics_alert;
pub mod notify;
pub mod read_jsonl;
pub mod reconcile;
pub mod restock_suggest;
pub mod script;
pub mod stock_freeze;
pub mod store;
pub mod store_orders;
pub mod store_refunds;
pub mod stored_orders;
#[cfg(test)]
pub(crate) mod testing;
pub mod tmc_messages;

pub use crate::engine::node::{
    BuildContext, BuildError, Built, ErrorClass, Halt, NodeError, NodeKind, NodeType, Registry, Role, ScriptPlace,
    Source, Transform,
};
pub use crate::engine::output::{Entry, Field, FieldRead, Fields, Output, Shape, Typing, list_entries};
pub use crate::engine::{Emitter, NodeContext};

impl Registry {
    /// The built-in node types: one line each.
    pub fn builtin() -> Self {
        let mut registry = Self::default();
        registry.add(NodeType::of::<read_jsonl::ReadJsonl>());
        registry.add(NodeType::of::<filter::Filter>());
        registry.add(NodeType::of::<script::Script>());
        registry.add(NodeType::of::<store::StoreNode>());
        registry.add(NodeType::of::<log::Log>());
        registry.add(NodeType::of::<fetch_full::FetchFull>());
        registry.add(NodeType::of::<fetch_increment::FetchIncrement>());
        registry.add(NodeType::of::<fetch_detail::FetchDetail>());
        registry.add(NodeType::of::<dedupe::Dedupe>());
        registry.add(NodeType::of::<store_orders::StoreOrders>());
        registry.add(NodeType::of::<reconcile::Reconcile>());
        registry.add(NodeType::of::<restock_suggest::RestockSuggest>());
        registry.add(NodeType::of::<stock_freeze::StockFreeze>());
        registry.add(NodeType::of::<fetch_refunds::FetchRefunds>());
        registry.add(NodeType::of::<store_refunds::StoreRefunds>());
        registry.add(NodeType::of::<stored_orders::StoredOrders>());
        registry.add(NodeType::of::<logistics_alert::LogisticsAlert>());
        registry.add(NodeType::of::<notify::Notify>());
        registry.add(NodeType::of::<tmc_messages::TmcMessages>());
        registry.add(NodeType::of::<browser::BrowserNode>());
        registry
    }
}
