/// A TOML syntax or structure error, with the place in the text where it was found.
public struct TOMLError: Error, Sendable, Equatable, CustomStringConvertible {
    /// 1-based line of the offending text.
    public var line: Int
    /// 1-based column (in Unicode scalars) of the offending text.
    public var column: Int
    /// What is wrong, e.g. "duplicate key 'name' (first defined at line 3)".
    public var message: String

    /// Creates an error at `line`:`column`.
    public init(line: Int, column: Int, message: String) {
        self.line = line
        self.column = column
        self.message = message
    }

    /// The error's place.
    public var position: TOMLPosition { TOMLPosition(line: line, column: column) }

    /// `line:column: message`, e.g. "12:5: expected '=' after key 'name'".
    public var description: String { "\(line):\(column): \(message)" }
}
