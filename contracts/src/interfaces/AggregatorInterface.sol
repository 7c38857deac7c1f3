// SPDX-License-Identifier: MIT
pragma solidity ^0.8.0;

/// @title AggregatorInterface
/// @notice Chainlink's legacy ("v2") price feed interface, declared here with the same functions and
///         events as Chainlink's own so that consumers written against it call FeedAdapter unchanged.
/// @dev The getters never revert: where there is no data they return 0, as Chainlink's aggregators do.
interface AggregatorInterface {
    /// @notice The latest answer, scaled by `decimals()`; 0 when there is none.
    function latestAnswer() external view returns (int256);

    /// @notice Unix seconds of the block that stored the latest answer; 0 when there is none.
    function latestTimestamp() external view returns (uint256);

    /// @notice The latest round id; 0 when there is none.
    function latestRound() external view returns (uint256);

    /// @notice The answer of round `roundId`; 0 when that round has no data (any more).
    function getAnswer(uint256 roundId) external view returns (int256);

    /// @notice Unix seconds of the block that stored round `roundId`; 0 when it has no data (any more).
    function getTimestamp(uint256 roundId) external view returns (uint256);

    /// @notice A new answer was stored.
    event AnswerUpdated(int256 indexed current, uint256 indexed roundId, uint256 updatedAt);

    /// @notice A new round started.
    event NewRound(uint256 indexed roundId, address indexed startedBy, uint256 startedAt);
}
