//! orderflow: keeps a merchant's own database in step with its shops.
pub mod record;
pub mod script;
