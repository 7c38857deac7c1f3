// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

/// @notice Pull reports: a consumer that brings the oracle's signed batch in its own transaction
///         (`IOracleHub.updateAndRead` through the `OraclePull` library) and settles at a price fresher
///         than the last push; a batch pushed already just reads the stored value; bad signatures, stale
///         values, missing data and unknown feeds revert.

import {HubFixture} from "./utils/HubFixture.sol";
import {Vm} from "./utils/Test.sol";
import {IOracleHub} from "../src/IOracleHub.sol";
import {OraclePull} from "../src/OraclePull.sol";
import {Sig, Packing} from "./utils/Packing.sol";

/// @notice A settlement priced by pulled reports: the caller (a trader or a keeper) passes the signed
///         batch with the trade and pays for storing it; the price must have been observed at most
///         `maxAge` seconds ago. It sells ETH for USD at the oracle's ETH/USD price.
contract PulledSettlement {
    using OraclePull for IOracleHub;

    IOracleHub public immutable hub;
    bytes32 public immutable feedId;
    uint256 public immutable maxAge;

    event Settled(address indexed trader, uint256 ethIn, uint256 usdOut, int256 price, uint256 observedAt);

    constructor(IOracleHub hub_, bytes32 feedId_, uint256 maxAge_) {
        hub = hub_;
        feedId = feedId_;
        maxAge = maxAge_;
    }

    /// @param ethIn      Amount sold, 18 decimals.
    /// @param reports    The oracle's packed signed reports (any batch holding the feed, or none of it
    ///                   when the pushed value is fresh enough).
    /// @param signatures Their signatures.
    /// @return usdOut    USD owed, 18 decimals.
    function settle(uint256 ethIn, bytes calldata reports, bytes calldata signatures)
        external
        returns (uint256 usdOut)
    {
        (int256 price, uint256 observedAt) = hub.updateAndRead(reports, signatures, feedId, maxAge);
        usdOut = ethIn * uint256(price) / 1e8;
        emit Settled(msg.sender, ethIn, usdOut, price, observedAt);
    }
}

contract PullConsumerTest is HubFixture {
    using Packing for IOracleHub.Report[];
    using Packing for Sig[];

    uint256 internal constant MAX_AGE_S = 60;
    address internal constant TRADER = address(0x7EADE5);

    PulledSettlement internal settlement;

    function setUp() public override {
        super.setUp();
        settlement = new PulledSettlement(hub, ETH, MAX_AGE_S);
    }

    function _signed(IOracleHub.Report[] memory reports) internal view returns (bytes memory, bytes memory) {
        return (reports.pack(), _sign(reports, _quorum()).pack());
    }

    function test_SettlesAtPulledPriceFresherThanLastPush() public {
        _submit(_one(ETH_I, 1, 3_000e8, _now())); // the last push
        vm.warp(block.timestamp + 10 minutes); // too old for this consumer now
        (bytes memory reports, bytes memory sigs) = _signed(_one(ETH_I, 2, 3_150e8, _now() - 2));
        vm.expectEmit(true, false, false, true, address(hub));
        emit IOracleHub.PriceUpdated(ETH_I, _update(2, 3_150e8, _now() - 2));
        vm.expectEmit(true, false, false, true, address(settlement));
        emit PulledSettlement.Settled(TRADER, 2e18, 6_300e18, 3_150e8, block.timestamp - 2);
        vm.prank(TRADER);
        vm.assertEq(settlement.settle(2e18, reports, sigs), 6_300e18);
        // The pulled value is stored for everyone, as a push would be.
        (int128 price,, uint32 round, uint32 observedAt, uint32 updatedAt) = hub.latest(ETH);
        vm.assertEq(int256(price), 3_150e8);
        vm.assertEq(uint256(round), 2);
        vm.assertEq(uint256(observedAt), block.timestamp - 2);
        vm.assertEq(uint256(updatedAt), block.timestamp);
    }

    /// @dev The aggregator pushed the very batch first: the hub skips its report (not the next round
    ///      any more) and the call returns the stored value, with no revert.
    function test_BatchAlreadyPushedReturnsStoredValue() public {
        _submit(_one(ETH_I, 1, 3_000e8, _now() - 30));
        vm.warp(block.timestamp + 20);
        (bytes memory reports, bytes memory sigs) = _signed(_one(ETH_I, 2, 3_020e8, _now() - 1));
        hub.submit(reports, sigs); // the push lands first
        uint256 pushedAt = block.timestamp;
        vm.warp(block.timestamp + 15);
        vm.expectEmit(true, false, false, true, address(hub));
        emit IOracleHub.ReportRejected(ETH_I, 2, IOracleHub.UnexpectedRound.selector);
        vm.assertEq(settlement.settle(1e18, reports, sigs), 3_020e18);
        (,, uint32 round,, uint32 updatedAt) = hub.latest(ETH);
        vm.assertEq(uint256(round), 2);
        vm.assertEq(uint256(updatedAt), pushedAt);
    }

    /// @dev The consumer's feed inside a larger batch: every report of it is stored, the feed read.
    function test_ReadsOneFeedOfAMultiFeedBatch() public {
        IOracleHub.Report[] memory batch = new IOracleHub.Report[](2);
        batch[0] = IOracleHub.Report({feedIndex: BTC_I, roundId: 1, price: 97_000e8, observedAt: _now()});
        batch[1] = IOracleHub.Report({feedIndex: ETH_I, roundId: 1, price: 3_333e8, observedAt: _now() - 1});
        (bytes memory reports, bytes memory sigs) = _signed(batch);
        vm.assertEq(settlement.settle(3e18, reports, sigs), 9_999e18);
        vm.assertEq(_price(BTC), 97_000e8);
    }

    function test_RevertIf_BadSignatures() public {
        _submit(_one(ETH_I, 1, 3_000e8, _now()));
        IOracleHub.Report[] memory next = _one(ETH_I, 2, 3_100e8, _now());
        bytes memory reports = next.pack();
        // (Signatures are made before expectRevert: signing calls the hub.)
        // Below the threshold.
        uint256[] memory one = new uint256[](1);
        one[0] = keys[0];
        bytes memory sigs = _sign(next, one).pack();
        vm.expectRevert(abi.encodeWithSelector(IOracleHub.BelowThreshold.selector, 1, 2));
        settlement.settle(1e18, reports, sigs);
        // A stranger's signature.
        uint256[] memory k = new uint256[](2);
        address intruder = vm.addr(0xDEAD);
        (k[0], k[1]) = intruder < signers[0] ? (uint256(0xDEAD), keys[0]) : (keys[0], uint256(0xDEAD));
        sigs = _sign(next, k).pack();
        vm.expectRevert(abi.encodeWithSelector(IOracleHub.UnauthorizedSigner.selector, intruder));
        settlement.settle(1e18, reports, sigs);
        // A report changed after signing: the signatures recover to other addresses.
        sigs = _sign(next, _quorum()).pack();
        next[0].price = 1_000e8;
        bytes memory forged = next.pack();
        vm.expectRevert();
        settlement.settle(1e18, forged, sigs);
        vm.assertEq(_round(ETH), 1); // nothing stored
        // The genuine pair goes through.
        vm.assertEq(settlement.settle(1e18, reports, sigs), 3_100e18);
    }

    /// @dev Observed 90 s ago: young enough for the hub (maxReportAge 120 s), too old for the consumer
    ///      (60 s). The whole transaction reverts, so nothing is stored either.
    function test_RevertIf_PulledReportOlderThanConsumerAllows() public {
        uint32 at = _now() - 90;
        (bytes memory reports, bytes memory sigs) = _signed(_one(ETH_I, 1, 3_000e8, at));
        vm.expectRevert(abi.encodeWithSelector(OraclePull.StaleReport.selector, ETH, at, MAX_AGE_S));
        settlement.settle(1e18, reports, sigs);
        vm.assertEq(_round(ETH), 0);
    }

    /// @dev A batch withheld past the hub's maxReportAge is skipped, and the stored value is stale.
    function test_RevertIf_PulledReportTooOldForHubAndStoredValueStale() public {
        uint32 pushedAt = _now();
        _submit(_one(ETH_I, 1, 3_000e8, pushedAt));
        (bytes memory reports, bytes memory sigs) = _signed(_one(ETH_I, 2, 3_010e8, _now()));
        vm.warp(block.timestamp + MAX_AGE + 1);
        vm.expectRevert(abi.encodeWithSelector(OraclePull.StaleReport.selector, ETH, pushedAt, MAX_AGE_S));
        settlement.settle(1e18, reports, sigs);
    }

    /// @dev A batch pushed long ago and replayed: skipped, and the stored value is stale.
    function test_RevertIf_AlreadyPushedValueStale() public {
        (bytes memory reports, bytes memory sigs) = _signed(_one(ETH_I, 1, 3_000e8, _now()));
        hub.submit(reports, sigs);
        vm.warp(block.timestamp + MAX_AGE_S);
        vm.assertEq(settlement.settle(1e18, reports, sigs), 3_000e18); // at the limit: fine
        vm.warp(block.timestamp + 1);
        vm.expectRevert(
            abi.encodeWithSelector(OraclePull.StaleReport.selector, ETH, block.timestamp - 61, MAX_AGE_S)
        );
        settlement.settle(1e18, reports, sigs);
    }

    /// @dev A batch without the consumer's feed, which has no value yet.
    function test_RevertIf_NoData() public {
        (bytes memory reports, bytes memory sigs) = _signed(_one(BTC_I, 1, 97_000e8, _now()));
        vm.expectRevert(abi.encodeWithSelector(IOracleHub.NoData.selector, ETH));
        settlement.settle(1e18, reports, sigs);
    }

    function test_RevertIf_UnknownFeed() public {
        bytes32 unknown = keccak256("SOL/USD");
        PulledSettlement other = new PulledSettlement(hub, unknown, MAX_AGE_S);
        (bytes memory reports, bytes memory sigs) = _signed(_one(ETH_I, 1, 3_000e8, _now()));
        vm.expectRevert(abi.encodeWithSelector(IOracleHub.UnknownFeed.selector, unknown));
        other.settle(1e18, reports, sigs);
    }
}

/// @notice `updateAndRead` on the hub itself: the same verification and skip rules as `submit`, and
///         the read that follows.
contract UpdateAndReadTest is HubFixture {
    using Packing for IOracleHub.Report[];
    using Packing for Sig[];

    function _pull(IOracleHub.Report[] memory reports, bytes32 feed)
        internal
        returns (int128 price, uint8 decimals, uint32 roundId, uint32 observedAt, uint32 updatedAt)
    {
        return hub.updateAndRead(reports.pack(), _sign(reports, _quorum()).pack(), feed);
    }

    function test_AppliesLikeSubmitAndReturnsLatest() public {
        IOracleHub.Report[] memory batch = new IOracleHub.Report[](2);
        batch[0] = IOracleHub.Report({feedIndex: BTC_I, roundId: 1, price: 97_000e8, observedAt: _now() - 3});
        batch[1] = IOracleHub.Report({feedIndex: ETH_I, roundId: 1, price: 3_000e8, observedAt: _now() - 1});
        vm.recordLogs();
        (int128 price, uint8 decimals, uint32 roundId, uint32 observedAt, uint32 updatedAt) =
            _pull(batch, BTC);
        Vm.Log[] memory logs = vm.getRecordedLogs();
        vm.assertEq(logs.length, 2);
        vm.assertEq(logs[0].topics[0], IOracleHub.PriceUpdated.selector);
        vm.assertEq(logs[1].topics[0], IOracleHub.PriceUpdated.selector);
        vm.assertEq(int256(price), 97_000e8);
        vm.assertEq(uint256(decimals), 8);
        vm.assertEq(uint256(roundId), 1);
        vm.assertEq(uint256(observedAt), block.timestamp - 3);
        vm.assertEq(uint256(updatedAt), block.timestamp);
        vm.assertEq(_price(ETH), 3_000e8);
    }

    /// @dev Every report skipped, for its own reason, and the call still answers.
    function test_SkipsLikeSubmit() public {
        _submit(_one(BTC_I, 1, 97_000e8, _now()));
        IOracleHub.Report[] memory batch = new IOracleHub.Report[](3);
        batch[0] = IOracleHub.Report({feedIndex: BTC_I, roundId: 1, price: 98_000e8, observedAt: _now()});
        batch[1] = IOracleHub.Report({feedIndex: BTC_I, roundId: 2, price: 1e8, observedAt: _now()});
        batch[2] = IOracleHub.Report({feedIndex: 9, roundId: 1, price: 1e8, observedAt: _now()});
        vm.expectEmit(true, false, false, true, address(hub));
        emit IOracleHub.ReportRejected(BTC_I, 1, IOracleHub.UnexpectedRound.selector);
        vm.expectEmit(true, false, false, true, address(hub));
        emit IOracleHub.ReportRejected(BTC_I, 2, IOracleHub.OutOfBounds.selector);
        vm.expectEmit(true, false, false, true, address(hub));
        emit IOracleHub.ReportRejected(9, 1, IOracleHub.UnknownFeedIndex.selector);
        (int128 price,, uint32 roundId,,) = _pull(batch, BTC);
        vm.assertEq(int256(price), 97_000e8);
        vm.assertEq(uint256(roundId), 1);
    }

    function test_ReturnsZerosForFeedWithoutValue() public {
        (int128 price, uint8 decimals, uint32 roundId, uint32 observedAt, uint32 updatedAt) =
            _pull(_one(BTC_I, 1, 97_000e8, _now()), ETH);
        vm.assertEq(int256(price), 0);
        vm.assertEq(uint256(decimals), 8);
        vm.assertEq(uint256(roundId) + observedAt + updatedAt, 0);
    }

    function test_RevertIf_BatchFaultsAsSubmit() public {
        IOracleHub.Report[] memory reports = _one(BTC_I, 1, 97_000e8, _now());
        bytes memory packed = reports.pack();
        bytes memory sigs = _sign(reports, _quorum()).pack();
        vm.expectRevert(abi.encodeWithSelector(IOracleHub.MalformedBatch.selector, 25, sigs.length));
        hub.updateAndRead(_cut(packed), sigs, BTC);
        vm.expectRevert(IOracleHub.EmptyBatch.selector);
        hub.updateAndRead("", "", BTC);
        vm.prank(OWNER);
        hub.setPaused(true);
        vm.expectRevert(IOracleHub.HubPaused.selector);
        hub.updateAndRead(packed, sigs, BTC);
        vm.prank(OWNER);
        hub.setPaused(false);
        // Signatures in descending order.
        Sig[] memory s = _sign(reports, _quorum());
        (s[0], s[1]) = (s[1], s[0]);
        vm.expectRevert(
            abi.encodeWithSelector(IOracleHub.SignersNotAscending.selector, signers[1], signers[0])
        );
        hub.updateAndRead(packed, s.pack(), BTC);
        vm.expectRevert(abi.encodeWithSelector(IOracleHub.UnknownFeed.selector, bytes32(0)));
        hub.updateAndRead(packed, sigs, bytes32(0));
        vm.assertEq(_round(BTC), 0);
    }

    function _cut(bytes memory b) internal pure returns (bytes memory out) {
        out = new bytes(b.length - 1);
        for (uint256 i = 0; i < out.length; ++i) {
            out[i] = b[i];
        }
    }
}
