// The object the two filters of one routed request share: the downstream `sluice` filter makes
// it when it routes and stores it in the request's filter state; every upstream attempt
// (`sluice_upstream`, once per try) finds it there, reads the routed request's facts and leaves
// its report; the downstream filter reads the last report when it meters the response.
//
// Why an object in filter state rather than values in dynamic metadata: see the comment of
// FilterMetadata.swift in SluiceCore (cost, and that no other filter can forge it). Both filters
// of a request run on the same Envoy worker thread, one hook at a time, so the object needs no
// lock; Envoy lets go of its reference when the request's filter state goes.
public import SluiceCore

public final class FilterLink {
    /// The filter-state key (module objects have their own keys: nothing else is stored here).
    static let key: StaticString = "sluice.filter_link"

    /// What was routed.
    public let context: AttemptContext
    /// The last upstream attempt's report; nil until an attempt reports.
    public var report: AttemptReport?
    /// Request headers an attempt took off the request for its adapter (`UpstreamAction.carryRequestHeader`),
    /// for later attempts: Envoy shares the header map between them.
    public var carriedRequestHeaders: [(name: String, value: String)] = []

    public init(context: AttemptContext) { self.context = context }

    /// Stores `link` in the filter state of the stream Envoy (or a test host) knows as
    /// `filterEnvoyPointer`, as the downstream filter does when it routes: for driving the
    /// upstream filter alone in tests and benchmarks.
    public static func store(_ link: FilterLink, onStream filterEnvoyPointer: UnsafeMutableRawPointer) {
        EnvoyHTTPStream(filterEnvoyPointer).setFilterStateObject(key, link)
    }

    /// The link stored on that stream, if any.
    public static func stored(onStream filterEnvoyPointer: UnsafeMutableRawPointer) -> FilterLink? {
        EnvoyHTTPStream(filterEnvoyPointer).filterLink
    }
}

extension EnvoyHTTPStream {
    /// The link the downstream filter stored for this request; nil when `sluice` did not route it.
    var filterLink: FilterLink? { filterStateObject(FilterLink.key, as: FilterLink.self) }
}
