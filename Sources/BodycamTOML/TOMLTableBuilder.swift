/// The parser's mutable view of a table while the document is still being read.
///
/// TOML lets later lines add to tables opened earlier (`[a.b]` after `[a.b.c]`, a second `[[x]]`),
/// so the parser needs shared references it can reach again by key; the finished, immutable
/// `TOMLTable` is made once at the end by `build()`.
final class TOMLTableBuilder {
    /// How the table came to exist, which decides who may still add to it.
    enum Origin {
        /// Created only as a parent of a header (`a` for `[a.b]`): a later `[a]` may still define it.
        case implicit
        /// Defined by `[header]` or `[[header]]` (or the root): never defined again, and dotted keys
        /// from other tables may not reach into it.
        case header
        /// Created or extended by dotted keys in the section numbered `section`: only dotted keys of
        /// that same section may add to it, and no header may define it.
        case dotted(section: Int)
    }

    /// One key's content.
    enum Node {
        /// A finished value: scalar, static array or inline table. Nothing can be added to it.
        case value(TOMLValue, position: TOMLPosition, itemPositions: [TOMLPosition])
        /// A table that may still grow.
        case table(TOMLTableBuilder)
        /// An array of tables made by `[[header]]`s.
        case tables(TOMLTableArrayBuilder)
    }

    var position: TOMLPosition
    var origin: Origin
    /// Nesting level: 0 for the root; kept so that hostile input cannot build unbounded trees.
    let depth: Int
    private(set) var keys: [String] = []
    private(set) var nodes: [Node] = []
    private var slots: [String: Int] = [:]

    init(position: TOMLPosition, origin: Origin, depth: Int) {
        self.position = position
        self.origin = origin
        self.depth = depth
    }

    /// The node for `key`, if the key is defined.
    func node(_ key: String) -> Node? {
        guard let slot = slots[key] else { return nil }
        return nodes[slot]
    }

    /// Adds `key`; the caller has checked that it is not yet defined.
    func add(_ key: String, _ node: Node) {
        slots[key] = nodes.count
        keys.append(key)
        nodes.append(node)
    }

    /// The finished table. Recursion is bounded by the parser's depth limit.
    func build() -> TOMLTable {
        var table = TOMLTable(position: position)
        for (key, node) in zip(keys, nodes) {
            switch node {
            case .value(let value, let position, let itemPositions):
                table.set(key, to: value, at: position, itemPositions: itemPositions)
            case .table(let child):
                table.set(key, to: .table(child.build()), at: child.position)
            case .tables(let array):
                let items = array.elements.map { TOMLValue.table($0.build()) }
                let positions = array.elements.map(\.position)
                table.set(key, to: .array(items), at: array.position, itemPositions: positions)
            }
        }
        return table
    }
}

/// An array of tables while it is being read: `[[x]]` headers append to it.
final class TOMLTableArrayBuilder {
    /// Where the first `[[header]]` is.
    let position: TOMLPosition
    /// The tables, one per `[[header]]`; never empty, since the first header creates the array.
    private(set) var elements: [TOMLTableBuilder]

    init(first: TOMLTableBuilder) {
        position = first.position
        elements = [first]
    }

    /// The table that `[x.y]` or `[[x.y]]` headers after a `[[x]]` add to.
    var last: TOMLTableBuilder {
        // `elements` starts with one table and only grows.
        elements[elements.count - 1]
    }

    func append(_ table: TOMLTableBuilder) {
        elements.append(table)
    }
}
