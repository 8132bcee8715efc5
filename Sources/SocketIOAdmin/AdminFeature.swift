/// What the server tells the UI it supports (`config.supportedFeatures`), the reference's
/// names.
enum AdminFeature: String, CaseIterable {
    case emit = "EMIT"
    case join = "JOIN"
    case leave = "LEAVE"
    case disconnect = "DISCONNECT"
    case multipleJoin = "MJOIN"
    case multipleLeave = "MLEAVE"
    case multipleDisconnect = "MDISCONNECT"
    case aggregatedEvents = "AGGREGATED_EVENTS"
    case allEvents = "ALL_EVENTS"

    /// The features of a configuration: commands unless read-only, every event in
    /// development mode.
    static func supported(by configuration: SocketIOAdminConfiguration) -> [AdminFeature] {
        var features: [AdminFeature] = []
        if !configuration.readonly {
            features += [.emit, .join, .leave, .disconnect, .multipleJoin, .multipleLeave, .multipleDisconnect]
        }
        features.append(.aggregatedEvents)
        if configuration.mode == .development { features.append(.allEvents) }
        return features
    }
}
