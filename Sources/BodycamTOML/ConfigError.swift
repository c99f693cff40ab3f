/// A configuration file problem, naming the file, the line and the key.
///
/// Printed as `file:line: message`, or `file:line:column: message` for TOML syntax errors, e.g.
/// `board/sim.toml:12: [recording] pre_event_seconds = 150 is out of range 0...120`.
public struct ConfigError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The file's path as the caller gave it, e.g. "board/sim.toml".
    public var file: String
    /// The line of the offending key. When the key is missing entirely it is the line of its table's
    /// header, and nil only if there is none (a missing key of the root table).
    public var line: Int?
    /// The column, for TOML syntax errors only; nil for errors found by `ConfigTable`.
    public var column: Int?
    /// The key's full path, e.g. "recording.pre_event_seconds" or "camera[1].width" for the second
    /// `[[camera]]`; empty for syntax errors.
    public var keyPath: String
    /// What is wrong, naming the table and key, e.g. "[video] crf must be a number, found string \"high\"".
    public var message: String

    /// Creates an error.
    public init(file: String, line: Int?, column: Int? = nil, keyPath: String, message: String) {
        self.file = file
        self.line = line
        self.column = column
        self.keyPath = keyPath
        self.message = message
    }

    /// A syntax error in `file`, keeping its line and column.
    public init(file: String, syntax error: TOMLError) {
        self.init(file: file, line: error.line, column: error.column, keyPath: "", message: error.message)
    }

    /// `file:line: message`, `file:line:column: message`, or `file: message` when there is no line.
    public var description: String {
        var place = file
        if let line {
            place += ":\(line)"
            if let column { place += ":\(column)" }
        }
        return place + ": " + message
    }
}
