// Quota counters that outlive config snapshots.
//
// Envoy builds a new filter config for every listener update (an xDS push, a file change) and
// runs old and new side by side while the old one drains. Counters built per config would hand
// every key a fresh daily budget on each push. The registry remembers, per scope name, the
// counters the last config built; the next config takes them over where the limits allow (see
// `ScopeCounters.init(previous:)`: budgets always, a rate bucket only at the same limit).
//
// One registry per process means listeners that run side by side and configure the same scope
// share its counters, which is what a key's quota means: per gateway, not per listener.
// It is locked only while a config is built, on Envoy's main thread, never on the request path.

import Synchronization

public final class QuotaCounterRegistry: Sendable {
    private struct State {
        var scopes: [QuotaScope: ScopeCounters] = [:]
        var subjects: SubjectScopeTable?
    }

    private let state = Mutex(State())

    public init() {}

    /// Counters for `scope` under `limits`, taking over the registered ones where they apply.
    func counters(for scope: QuotaScope, limits: QuotaLimits) -> ScopeCounters {
        state.withLock { state in
            let counters = ScopeCounters(scope: scope, limits: limits, previous: state.scopes[scope])
            state.scopes[scope] = counters
            return counters
        }
    }

    /// A subject table taking over the last one's subjects.
    func subjects(limits: QuotaLimits, capacity: Int) -> SubjectScopeTable {
        state.withLock { state in
            let table = SubjectScopeTable(limits: limits, capacity: capacity, previous: state.subjects)
            state.subjects = table
            return table
        }
    }
}
