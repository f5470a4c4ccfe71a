//! Marking a snapshot as safe to reuse in place.
//!
//! A host may run many fresh executions in one instance if, between them, it puts back every
//! piece of state the guest could have changed. For this runtime that state is linear memory
//! (restored page by page by the host) and mutable globals (which the host can only reset if
//! they are exported). Tables and passive data or element segments are state too, but only
//! instructions such as `table.set` or `data.drop` change them; a module without those keeps
//! them as instantiated.
//!
//! `mark` checks the code for such instructions and, when there are none, exports every
//! defined mutable global as `start.global.<index>` and the memory a second time as
//! [`REUSABLE_EXPORT`]. A host that finds that export may restore and reuse instances; one
//! that does not must instantiate afresh every time.

use wasm_encoder::{ExportKind, ExportSection, RawSection};
use wasmparser::{ExternalKind, Operator, Parser, Payload, TypeRef};

use crate::Error;

/// Exported (as an alias of the memory) only by snapshots that passed the check.
pub const REUSABLE_EXPORT: &str = "start.reusable";
/// Prefix of the exports naming each defined mutable global, by its index.
pub const GLOBAL_EXPORT_PREFIX: &str = "start.global.";

/// What the scan of a module found.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Scan {
    /// Indices (in the global index space) of globals the module defines as mutable.
    pub mutable_globals: Vec<u32>,
    /// Instructions that change tables or segments, by name (first few).
    pub blockers: Vec<&'static str>,
}

/// The name of an instruction that changes instance state outside memory and globals.
fn blocker(op: &Operator<'_>) -> Option<&'static str> {
    Some(match op {
        Operator::TableSet { .. } => "table.set",
        Operator::TableGrow { .. } => "table.grow",
        Operator::TableFill { .. } => "table.fill",
        Operator::TableCopy { .. } => "table.copy",
        Operator::TableInit { .. } => "table.init",
        Operator::ElemDrop { .. } => "elem.drop",
        Operator::MemoryInit { .. } => "memory.init",
        Operator::DataDrop { .. } => "data.drop",
        _ => return None,
    })
}

/// Scans `wasm` for mutable globals and state-changing instructions.
pub(crate) fn scan(wasm: &[u8]) -> Result<Scan, Error> {
    let bad = |e: wasmparser::BinaryReaderError| Error::wasm("checking the snapshot for reuse", e);
    let mut out = Scan::default();
    let mut imported_globals = 0u32;
    for payload in Parser::new(0).parse_all(wasm) {
        match payload.map_err(bad)? {
            Payload::ImportSection(reader) => {
                for import in reader.into_imports() {
                    if matches!(import.map_err(bad)?.ty, TypeRef::Global(_)) {
                        imported_globals += 1;
                    }
                }
            }
            Payload::GlobalSection(reader) => {
                for (i, global) in reader.into_iter().enumerate() {
                    if global.map_err(bad)?.ty.mutable {
                        out.mutable_globals.push(imported_globals + i as u32);
                    }
                }
            }
            Payload::CodeSectionEntry(body) => {
                let mut ops = body.get_operators_reader().map_err(bad)?;
                while !ops.eof() {
                    if let Some(name) = blocker(&ops.read().map_err(bad)?)
                        && out.blockers.len() < 8
                        && !out.blockers.contains(&name)
                    {
                        out.blockers.push(name);
                    }
                }
            }
            _ => {}
        }
    }
    Ok(out)
}

/// Returns `wasm` with the reuse exports added when it is safe to reuse, else unchanged (and
/// the reason). The memory is also exported under each of `memory_aliases`: names that carry
/// facts about the snapshot to the host (see [`crate::preseed`]).
pub(crate) fn mark(
    wasm: &[u8],
    memory_aliases: &[String],
) -> Result<(Vec<u8>, Option<String>), Error> {
    let found = scan(wasm)?;
    if !found.blockers.is_empty() {
        return Ok((
            wasm.to_vec(),
            Some(format!(
                "the module changes tables or segments ({})",
                found.blockers.join(", ")
            )),
        ));
    }
    let bad = |e: wasmparser::BinaryReaderError| Error::wasm("marking the snapshot reusable", e);
    let mut module = wasm_encoder::Module::new();
    let mut marked = false;
    for payload in Parser::new(0).parse_all(wasm) {
        let payload = payload.map_err(bad)?;
        if let Payload::ExportSection(reader) = &payload {
            let mut exports = ExportSection::new();
            let mut memory = None;
            for export in reader.clone() {
                let export = export.map_err(bad)?;
                let kind = match export.kind {
                    ExternalKind::Func | ExternalKind::FuncExact => ExportKind::Func,
                    ExternalKind::Table => ExportKind::Table,
                    ExternalKind::Memory => {
                        memory.get_or_insert(export.index);
                        ExportKind::Memory
                    }
                    ExternalKind::Global => ExportKind::Global,
                    ExternalKind::Tag => ExportKind::Tag,
                };
                exports.export(export.name, kind, export.index);
            }
            for &g in &found.mutable_globals {
                exports.export(&format!("{GLOBAL_EXPORT_PREFIX}{g}"), ExportKind::Global, g);
            }
            if let Some(m) = memory {
                exports.export(REUSABLE_EXPORT, ExportKind::Memory, m);
                for alias in memory_aliases {
                    exports.export(alias, ExportKind::Memory, m);
                }
                marked = true;
            }
            module.section(&exports);
            continue;
        }
        if let Some((id, range)) = payload.as_section() {
            module.section(&RawSection {
                id,
                data: &wasm[range],
            });
        }
    }
    if !marked {
        return Ok((wasm.to_vec(), Some("the module exports no memory".into())));
    }
    Ok((module.finish(), None))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exports(wasm: &[u8]) -> Vec<String> {
        let mut names = Vec::new();
        for payload in Parser::new(0).parse_all(wasm) {
            if let Payload::ExportSection(r) = payload.unwrap() {
                names.extend(r.into_iter().map(|e| e.unwrap().name.to_string()));
            }
        }
        names
    }

    #[test]
    fn exports_mutable_globals_and_the_marker() {
        let wasm = wat::parse_str(
            r#"(module
                (global $sp (mut i32) (i32.const 1024))
                (global $k i32 (i32.const 7))
                (global $g (mut i64) (i64.const 0))
                (memory (export "memory") 1)
                (func (export "f") (result i32) global.get $k global.set $sp global.get $sp)
                (data (i32.const 0) "hi"))"#,
        )
        .unwrap();
        let (marked, why) = mark(&wasm, &[]).unwrap();
        assert_eq!(why, None);
        assert_eq!(
            exports(&marked),
            [
                "memory",
                "f",
                "start.global.0",
                "start.global.2",
                "start.reusable"
            ]
        );
        wasmparser::validate(&marked).unwrap();
    }

    #[test]
    fn table_and_segment_changes_block_reuse() {
        let wasm = wat::parse_str(
            r#"(module
                (memory (export "memory") 1)
                (table 2 funcref)
                (data $d "x")
                (func (export "f") (param i32)
                  i32.const 0 ref.null func table.set 0
                  data.drop $d))"#,
        )
        .unwrap();
        let (same, why) = mark(&wasm, &[]).unwrap();
        assert_eq!(same, wasm);
        let why = why.unwrap();
        assert!(
            why.contains("table.set") && why.contains("data.drop"),
            "{why}"
        );
    }
}
