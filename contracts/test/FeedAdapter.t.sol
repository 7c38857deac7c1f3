// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

import {HubFixture} from "./utils/HubFixture.sol";
import {IOracleHub} from "../src/IOracleHub.sol";
import {FeedAdapter} from "../src/FeedAdapter.sol";
import {AggregatorV3Interface} from "../src/interfaces/AggregatorV3Interface.sol";

/// @notice A consumer as existing protocols write them: it knows only Chainlink's interface. It
///         returns the price with 18 decimals and refuses stale or non-positive answers.
contract ChainlinkConsumer {
    AggregatorV3Interface public immutable feed;
    uint256 public immutable maxAge;

    error Stale(uint256 updatedAt);
    error BadAnswer(int256 answer);

    constructor(AggregatorV3Interface feed_, uint256 maxAge_) {
        feed = feed_;
        maxAge = maxAge_;
    }

    function price18() external view returns (uint256) {
        (uint80 roundId, int256 answer,, uint256 updatedAt, uint80 answeredInRound) = feed.latestRoundData();
        if (answer <= 0) revert BadAnswer(answer);
        if (answeredInRound < roundId || block.timestamp - updatedAt > maxAge) revert Stale(updatedAt);
        return uint256(answer) * 10 ** (18 - feed.decimals());
    }
}

/// @notice A hub whose round reads fail for another reason than "round not held".
contract BrokenHub {
    error Broken();

    function feedInfo(bytes32 feedId) external pure returns (IOracleHub.FeedInfo memory info) {
        info.feedId = feedId;
        info.decimals = 8;
        info.description = "BTC / USD";
    }

    function roundByIndex(uint16, uint32) external pure returns (int128, uint32, uint32) {
        revert Broken();
    }
}

/// @notice FeedAdapter: Chainlink's interface over a hub feed, field by field, and the legacy getters'
///         zeros where there is no data.
contract FeedAdapterTest is HubFixture {
    FeedAdapter internal adapter;
    ChainlinkConsumer internal consumer;

    function setUp() public override {
        super.setUp();
        adapter = new FeedAdapter(hub, BTC);
        consumer = new ChainlinkConsumer(AggregatorV3Interface(address(adapter)), 3600);
    }

    function test_Metadata() public view {
        vm.assertEq(uint256(adapter.decimals()), 8);
        vm.assertEq(adapter.description(), "BTC / USD");
        vm.assertEq(adapter.version(), 1);
        vm.assertEq(adapter.feedId(), BTC);
        vm.assertEq(uint256(adapter.feedIndex()), BTC_I);
        vm.assertEq(address(adapter.hub()), address(hub));
    }

    function test_LatestRoundDataFieldMeanings() public {
        uint32 observed = _now() - 5;
        // Rounds are consecutive: start the feed at round 41 so that roundId (42) differs from every
        // other field.
        _forceRound(BTC_I, 41, observed - 10);
        _submit(_one(BTC_I, 42, 97_000e8, observed));
        vm.warp(block.timestamp + 7);
        (uint80 roundId, int256 answer, uint256 startedAt, uint256 updatedAt, uint80 answeredInRound) =
            adapter.latestRoundData();
        vm.assertEq(uint256(roundId), 42);
        vm.assertEq(answer, 97_000e8);
        vm.assertEq(startedAt, observed); // observation time
        vm.assertEq(updatedAt, block.timestamp - 7); // when the chain stored it
        vm.assertEq(uint256(answeredInRound), 42);
    }

    function test_GetRoundDataOfPastRounds() public {
        _submit(_one(BTC_I, 1, 96_000e8, _now()));
        _submit(_one(BTC_I, 2, 97_000e8, _now()));
        (uint80 roundId, int256 answer,,, uint80 answeredInRound) = adapter.getRoundData(1);
        vm.assertEq(uint256(roundId), 1);
        vm.assertEq(answer, 96_000e8);
        vm.assertEq(uint256(answeredInRound), 1);
    }

    function test_RevertIf_NoDataPresent() public {
        vm.expectRevert(FeedAdapter.NoDataPresent.selector);
        adapter.latestRoundData();
        vm.expectRevert(FeedAdapter.NoDataPresent.selector);
        adapter.getRoundData(0);
        vm.expectRevert(FeedAdapter.NoDataPresent.selector);
        adapter.getRoundData(uint80(type(uint32).max) + 1);
        vm.expectRevert(abi.encodeWithSelector(IOracleHub.RoundNotAvailable.selector, BTC, 3, 0));
        adapter.getRoundData(3);
    }

    function test_RevertIf_AdapterForUnknownFeed() public {
        bytes32 x = keccak256("X/Y");
        vm.expectRevert(abi.encodeWithSelector(IOracleHub.UnknownFeed.selector, x));
        new FeedAdapter(hub, x);
    }

    function test_ConsumerReadsThroughChainlinkInterface() public {
        _submit(_one(BTC_I, 1, 97_123_45000000, _now()));
        vm.assertEq(consumer.price18(), 97_123_450000000000000000);
        // The consumer's own staleness rule works on updatedAt as with Chainlink.
        vm.warp(block.timestamp + 3601);
        vm.expectRevert(abi.encodeWithSelector(ChainlinkConsumer.Stale.selector, block.timestamp - 3601));
        consumer.price18();
    }

    function test_ConsumerSeesNoDataAsRevert() public {
        vm.expectRevert(FeedAdapter.NoDataPresent.selector);
        consumer.price18();
    }

    // ------------------------------------------------------------ legacy getters (AggregatorInterface)

    function test_LegacyGettersAreZeroBeforeFirstRound() public view {
        vm.assertEq(adapter.latestAnswer(), 0);
        vm.assertEq(adapter.latestTimestamp(), 0);
        vm.assertEq(adapter.latestRound(), 0);
        uint256[5] memory ids = [uint256(0), 1, 64, uint256(type(uint32).max), type(uint256).max];
        for (uint256 i = 0; i < ids.length; ++i) {
            vm.assertEq(adapter.getAnswer(ids[i]), 0);
            vm.assertEq(adapter.getTimestamp(ids[i]), 0);
        }
    }

    function test_LegacyGettersFollowRounds() public {
        uint256 t1 = block.timestamp;
        _submit(_one(BTC_I, 1, 96_000e8, _now() - 4));
        vm.warp(block.timestamp + 60);
        _submit(_one(BTC_I, 2, 97_000e8, _now() - 1));
        vm.warp(block.timestamp + 5);
        vm.assertEq(adapter.latestAnswer(), 97_000e8);
        vm.assertEq(adapter.latestTimestamp(), block.timestamp - 5); // stored at, not observed at
        vm.assertEq(adapter.latestRound(), 2);
        vm.assertEq(adapter.getAnswer(1), 96_000e8);
        vm.assertEq(adapter.getTimestamp(1), t1);
        vm.assertEq(adapter.getAnswer(2), 97_000e8);
        vm.assertEq(adapter.getTimestamp(2), block.timestamp - 5);
        // Round 0, a round not reached yet, ids beyond uint32: 0, never a revert.
        uint256[5] memory none = [uint256(0), 3, 66, uint256(type(uint32).max) + 1, type(uint256).max];
        for (uint256 i = 0; i < none.length; ++i) {
            vm.assertEq(adapter.getAnswer(none[i]), 0);
            vm.assertEq(adapter.getTimestamp(none[i]), 0);
        }
    }

    /// @dev The hub keeps 64 rounds: once round 65 is stored, round 1 is gone. The legacy getters say 0,
    ///      getRoundData keeps reverting.
    function test_LegacyGettersAreZeroForRoundEvictedFromHistory() public {
        for (uint32 r = 1; r <= 65; ++r) {
            _submit(_one(BTC_I, r, int128(int256(uint256(90_000e8 + r))), _now()));
        }
        vm.assertEq(adapter.latestRound(), 65);
        vm.assertEq(adapter.getAnswer(1), 0);
        vm.assertEq(adapter.getTimestamp(1), 0);
        vm.assertEq(adapter.getAnswer(2), 90_000e8 + 2);
        vm.assertEq(adapter.getTimestamp(2), block.timestamp);
        vm.assertEq(adapter.getAnswer(65), 90_000e8 + 65);
        vm.expectRevert(abi.encodeWithSelector(IOracleHub.RoundNotAvailable.selector, BTC, 1, 65));
        adapter.getRoundData(1);
    }

    /// @dev Only the hub's "round not held" reads as 0: any other failure of the hub call is passed on.
    function test_LegacyGettersPassOnOtherHubFailures() public {
        BrokenHub broken = new BrokenHub();
        FeedAdapter a = new FeedAdapter(IOracleHub(address(broken)), BTC);
        vm.expectRevert(BrokenHub.Broken.selector);
        a.getAnswer(1);
        vm.expectRevert(BrokenHub.Broken.selector);
        a.getTimestamp(1);
        // Running out of gas is not "no data" either: whatever gas the caller gives, getAnswer of a
        // stored round fails or answers the price, never 0.
        _submit(_one(BTC_I, 1, 96_000e8, _now()));
        uint256 failed;
        for (uint256 gas = 500; gas <= 20_000; gas += 25) {
            (bool ok, bytes memory ret) =
                address(adapter).staticcall{gas: gas}(abi.encodeCall(FeedAdapter.getAnswer, (1)));
            if (!ok) {
                ++failed;
                continue;
            }
            vm.assertEq(abi.decode(ret, (int256)), 96_000e8);
        }
        vm.assertGt(failed, 0);
    }

    function test_AdapterFollowsEveryUpdate() public {
        for (uint32 r = 1; r <= 5; ++r) {
            _submit(_one(BTC_I, r, int128(int256(uint256(96_000e8 + r))), _now()));
            (uint80 roundId, int256 answer,,,) = adapter.latestRoundData();
            vm.assertEq(uint256(roundId), r);
            vm.assertEq(answer, int256(uint256(96_000e8 + r)));
        }
    }
}
