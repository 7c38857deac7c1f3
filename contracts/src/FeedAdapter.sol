// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

import {AggregatorInterface} from "./interfaces/AggregatorInterface.sol";
import {AggregatorV3Interface} from "./interfaces/AggregatorV3Interface.sol";
import {AggregatorV2V3Interface} from "./interfaces/AggregatorV2V3Interface.sol";
import {IOracleHub} from "./IOracleHub.sol";

/// @title FeedAdapter
/// @notice One OracleHub feed behind Chainlink's full AggregatorV2V3Interface, as Chainlink's own feed
///         proxies expose it, so that existing consumers work as they are, whichever part they use.
///         Field meanings follow Chainlink: `answer` is the price scaled by `decimals()`, `startedAt` is
///         the observation time, `updatedAt` (and the legacy timestamps) the time the chain stored the
///         value, and `answeredInRound` equals `roundId`. Round ids are the hub's, consecutive from 1;
///         the hub keeps the last 64 rounds. `description()` is the hub's feed description, registered
///         by the deployer as Chainlink writes it ("BTC / USD").
/// @dev No data, two conventions, both Chainlink's:
///      - `latestRoundData` and `getRoundData` revert (`NoDataPresent`, or the hub's `RoundNotAvailable`
///        for a round it does not hold), as Chainlink's FluxAggregator does ("No data present"). Its OCR
///        aggregators, behind today's feeds, return zeros instead (OCR1 and OCR2 revert only for a
///        round id above 2^32 - 1). We keep the revert: a zero answer with a zero timestamp can be taken
///        for a price by a consumer that checks nothing, while careful consumers (e.g. Liquity's
///        try/catch) treat a revert as a broken feed, which it is.
///      - the legacy getters of AggregatorInterface never revert and return 0 (no round yet, round 0,
///        a round id above 2^32 - 1 or not stored, a round evicted from the hub's 64-round history), as
///        every Chainlink aggregator does; their consumers (e.g. Aave's `latestAnswer() > 0`) rely on it.
///      The events of AggregatorInterface are declared (through the interface) but never emitted: the
///      hub stores values and emits `PriceUpdated`, like Chainlink's proxies, whose aggregators emit.
contract FeedAdapter is AggregatorV2V3Interface {
    /// @notice The hub holding the feed.
    IOracleHub public immutable hub;
    /// @notice The feed's id, keccak256 of the pair name.
    bytes32 public immutable feedId;
    /// @notice The feed's index in the hub.
    uint16 public immutable feedIndex;
    uint8 private immutable _decimals;
    string private _description;

    /// @notice There is no round with data for this request.
    error NoDataPresent();

    /// @param hub_    The hub.
    /// @param feedId_ A feed registered on the hub.
    constructor(IOracleHub hub_, bytes32 feedId_) {
        IOracleHub.FeedInfo memory info = hub_.feedInfo(feedId_);
        hub = hub_;
        feedId = feedId_;
        feedIndex = info.index;
        _decimals = info.decimals;
        _description = info.description;
    }

    // ------------------------------------------------------------------ AggregatorV3Interface

    /// @inheritdoc AggregatorV3Interface
    function decimals() external view returns (uint8) {
        return _decimals;
    }

    /// @inheritdoc AggregatorV3Interface
    function description() external view returns (string memory) {
        return _description;
    }

    /// @inheritdoc AggregatorV3Interface
    function version() external pure returns (uint256) {
        return 1;
    }

    /// @inheritdoc AggregatorV3Interface
    function getRoundData(uint80 roundId_)
        external
        view
        returns (uint80 roundId, int256 answer, uint256 startedAt, uint256 updatedAt, uint80 answeredInRound)
    {
        if (roundId_ == 0 || roundId_ > type(uint32).max) revert NoDataPresent();
        (int128 price, uint32 observedAt, uint32 storedAt) = hub.roundByIndex(feedIndex, uint32(roundId_));
        return (roundId_, price, observedAt, storedAt, roundId_);
    }

    /// @inheritdoc AggregatorV3Interface
    function latestRoundData()
        external
        view
        returns (uint80 roundId, int256 answer, uint256 startedAt, uint256 updatedAt, uint80 answeredInRound)
    {
        (uint32 round, int128 price, uint32 observedAt, uint32 storedAt) = hub.latestByIndex(feedIndex);
        if (round == 0) revert NoDataPresent();
        return (round, price, observedAt, storedAt, round);
    }

    // ------------------------------------------------------------------ AggregatorInterface (legacy)

    /// @inheritdoc AggregatorInterface
    function latestAnswer() external view returns (int256) {
        (, int128 price,,) = hub.latestByIndex(feedIndex);
        return price;
    }

    /// @inheritdoc AggregatorInterface
    function latestTimestamp() external view returns (uint256) {
        (,,, uint32 storedAt) = hub.latestByIndex(feedIndex);
        return storedAt;
    }

    /// @inheritdoc AggregatorInterface
    function latestRound() external view returns (uint256) {
        (uint32 round,,,) = hub.latestByIndex(feedIndex);
        return round;
    }

    /// @inheritdoc AggregatorInterface
    function getAnswer(uint256 roundId) external view returns (int256) {
        (int128 price,) = _roundOrZero(roundId);
        return price;
    }

    /// @inheritdoc AggregatorInterface
    function getTimestamp(uint256 roundId) external view returns (uint256) {
        (, uint32 storedAt) = _roundOrZero(roundId);
        return storedAt;
    }

    /// @dev Round `roundId`'s price and storage time, or zeros when the hub does not hold it (the hub's
    ///      `RoundNotAvailable`). Any other failure of the hub call (none is expected; running out of gas
    ///      is one) is passed on rather than read as "no data".
    function _roundOrZero(uint256 roundId) private view returns (int128 price, uint32 storedAt) {
        if (roundId == 0 || roundId > type(uint32).max) return (0, 0);
        try hub.roundByIndex(feedIndex, uint32(roundId)) returns (int128 p, uint32, uint32 s) {
            return (p, s);
        } catch (bytes memory reason) {
            if (reason.length < 4 || bytes4(reason) != IOracleHub.RoundNotAvailable.selector) {
                assembly ("memory-safe") {
                    revert(add(reason, 0x20), mload(reason))
                }
            }
        }
    }
}
