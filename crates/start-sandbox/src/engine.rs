//! The wasmtime engine: its configuration (shared with every compiled artifact's cache key) and
//! the epoch ticker that turns wall time into interruptions.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use wasmtime::{Config, Enabled, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

use crate::Error;

/// How often the epoch advances; wall-time limits are enforced to about this precision.
pub const EPOCH_TICK: Duration = Duration::from_millis(10);
/// Guest wasm stack: CPython recurses deeply (its own recursion limit trips first).
pub const MAX_WASM_STACK_BYTES: usize = 8 << 20;
/// Fiber stack for async calls: the wasm stack plus room for host calls.
pub const ASYNC_STACK_BYTES: usize = 16 << 20;
/// How many instances (fresh executions plus open sessions) may live at once per engine.
pub const DEFAULT_MAX_INSTANCES: u32 = 1000;
/// The largest memory a pooled slot can hold: wasm32's whole 4 GiB.
const POOL_MAX_MEMORY_BYTES: usize = 4 << 30;
/// Per-instance metadata of CPython-on-WASI is about 1 MiB; leave room.
const POOL_MAX_INSTANCE_BYTES: usize = 4 << 20;
/// CPython's function table has ~100 000 entries.
const POOL_TABLE_ELEMENTS: usize = 200_000;

/// Settings for one engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EngineSettings {
    /// Meter fuel (needs its own compiled artifact).
    pub fuel: bool,
    /// Instance slots in the pool.
    pub max_instances: u32,
    /// Bytes of each memory slot kept resident (memset instead of unmapped) between uses.
    pub memory_keep_resident_bytes: usize,
}

/// Builds the engine described by `settings`.
pub fn build(settings: EngineSettings) -> Result<Engine, Error> {
    let mut pool = PoolingAllocationConfig::new();
    pool.total_core_instances(settings.max_instances)
        .total_memories(settings.max_instances)
        .total_tables(settings.max_instances)
        .total_stacks(settings.max_instances)
        .total_gc_heaps(settings.max_instances)
        .max_memory_size(POOL_MAX_MEMORY_BYTES)
        .max_core_instance_size(POOL_MAX_INSTANCE_BYTES)
        .table_elements(POOL_TABLE_ELEMENTS)
        .linear_memory_keep_resident(settings.memory_keep_resident_bytes)
        .table_keep_resident(settings.memory_keep_resident_bytes.min(1 << 20))
        .async_stack_keep_resident(settings.memory_keep_resident_bytes.min(ASYNC_STACK_BYTES))
        // Linux 6.7+: reset only the pages a guest dirtied, so a large keep-resident window
        // costs what the guest touched rather than a memset of the whole window.
        .pagemap_scan(Enabled::Auto);
    let mut config = Config::new();
    config
        .wasm_exceptions(true)
        .max_wasm_stack(MAX_WASM_STACK_BYTES)
        .async_stack_size(ASYNC_STACK_BYTES)
        .epoch_interruption(true)
        .consume_fuel(settings.fuel)
        .memory_init_cow(true)
        .memory_guaranteed_dense_image_size(start_runtime::DENSE_IMAGE_BYTES)
        .allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    Engine::new(&config).map_err(|e| Error::engine("creating the wasmtime engine", e))
}

/// A thread that advances an engine's epoch every [`EPOCH_TICK`], stopped on drop.
#[derive(Debug)]
pub struct EpochTicker {
    stop: Arc<AtomicBool>,
}

impl EpochTicker {
    /// Starts ticking `engine`.
    pub fn start(engine: &Engine) -> Result<Self, Error> {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let weak = engine.weak();
        std::thread::Builder::new()
            .name("epoch-ticker".into())
            .spawn(move || {
                while !flag.load(Ordering::Relaxed) {
                    std::thread::sleep(EPOCH_TICK);
                    match weak.upgrade() {
                        Some(engine) => engine.increment_epoch(),
                        None => break,
                    }
                }
            })
            .map_err(|source| Error::Io {
                action: "starting the epoch ticker",
                source,
            })?;
        Ok(EpochTicker { stop })
    }
}

impl Drop for EpochTicker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// Epoch ticks for a wall-time limit, rounded up, plus one for the tick in progress.
pub fn ticks_for(wall_time: Duration) -> u64 {
    let tick = EPOCH_TICK.as_nanos();
    let ticks = wall_time.as_nanos().div_ceil(tick);
    u64::try_from(ticks)
        .unwrap_or(u64::MAX / 2)
        .saturating_add(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_round_up() {
        assert_eq!(ticks_for(Duration::ZERO), 1);
        assert_eq!(ticks_for(Duration::from_millis(1)), 2);
        assert_eq!(ticks_for(Duration::from_millis(500)), 51);
        assert!(ticks_for(Duration::MAX) > 1 << 40);
    }
}
