// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

import {HubFixture} from "./utils/HubFixture.sol";
import {OracleHub} from "../src/OracleHub.sol";
import {IOracleHub} from "../src/IOracleHub.sol";
import {Sig, Packing} from "./utils/Packing.sol";

/// @notice Unit tests: every revert path, every skip reason, every event, reads and history.
contract OracleHubTest is HubFixture {
    // ================================================================ submit: happy paths

    function test_SubmitStoresValueAndEmits() public {
        IOracleHub.Report[] memory reports = _one(BTC_I, 1, 97_123_40000000, _now());
        Sig[] memory sigs = _sign(reports, _quorum());
        vm.expectEmit(true, false, false, true, address(hub));
        emit IOracleHub.PriceUpdated(BTC_I, _update(1, 97_123_40000000, _now()));
        vm.prank(address(0xBEEF)); // any account may relay
        _send(reports, sigs);

        (int128 price, uint8 decimals, uint32 round, uint32 observedAt, uint32 updatedAt) = hub.latest(BTC);
        vm.assertEq(int256(price), 97_123_40000000);
        vm.assertEq(uint256(decimals), 8);
        vm.assertEq(uint256(round), 1);
        vm.assertEq(uint256(observedAt), uint256(_now()));
        vm.assertEq(uint256(updatedAt), block.timestamp);
    }

    function test_BatchUpdatesSeveralFeeds() public {
        IOracleHub.Report[] memory reports = new IOracleHub.Report[](2);
        reports[0] = IOracleHub.Report({feedIndex: BTC_I, roundId: 1, price: 100_000e8, observedAt: _now()});
        reports[1] = IOracleHub.Report({feedIndex: ETH_I, roundId: 1, price: 3_000e8, observedAt: _now() - 5});
        _submit(reports);
        vm.assertEq(_price(BTC), 100_000e8);
        vm.assertEq(_price(ETH), 3_000e8);
        vm.assertEq(_round(BTC), 1);
        vm.assertEq(_round(ETH), 1);
        (,,, uint32 ethObservedAt,) = hub.latest(ETH);
        vm.assertEq(uint256(ethObservedAt), uint256(_now() - 5));
        // Each feed counts its own rounds: the next batch carries round 2 for both.
        reports[0].roundId = 2;
        reports[1].roundId = 2;
        reports[1].price = 3_001e8;
        _submit(reports);
        vm.assertEq(_round(BTC), 2);
        vm.assertEq(_round(ETH), 2);
        vm.assertEq(_price(ETH), 3_001e8);
    }

    function test_SameFeedTwiceInOneBatchAppliesInOrder() public {
        IOracleHub.Report[] memory reports = new IOracleHub.Report[](2);
        reports[0] = IOracleHub.Report({feedIndex: BTC_I, roundId: 1, price: 100_000e8, observedAt: _now()});
        reports[1] = IOracleHub.Report({feedIndex: BTC_I, roundId: 2, price: 100_001e8, observedAt: _now()});
        _submit(reports);
        vm.assertEq(_round(BTC), 2);
        vm.assertEq(_price(BTC), 100_001e8);
        (int128 first,,) = hub.getRoundData(BTC, 1);
        vm.assertEq(int256(first), 100_000e8);
    }

    function test_BatchAcrossRoundSlotsAppliesAll() public {
        // Feeds 4 and 5 live in the second round slot: the batch goes slot 0, 1, 0, 1, 0.
        vm.startPrank(OWNER);
        for (uint256 i = 2; i < 6; ++i) {
            hub.addFeed(keccak256(abi.encode(i)), 8, 1, 1e12, 60, MAX_AGE, "x");
        }
        vm.stopPrank();
        IOracleHub.Report[] memory reports = new IOracleHub.Report[](5);
        reports[0] = IOracleHub.Report({feedIndex: BTC_I, roundId: 1, price: 100_000e8, observedAt: _now()});
        reports[1] = IOracleHub.Report({feedIndex: 4, roundId: 1, price: 4e8, observedAt: _now()});
        reports[2] = IOracleHub.Report({feedIndex: BTC_I, roundId: 2, price: 100_002e8, observedAt: _now()});
        reports[3] = IOracleHub.Report({feedIndex: 5, roundId: 1, price: 5e8, observedAt: _now()});
        reports[4] = IOracleHub.Report({feedIndex: ETH_I, roundId: 1, price: 3_000e8, observedAt: _now()});
        _submit(reports);
        vm.assertEq(_round(BTC), 2);
        vm.assertEq(_price(BTC), 100_002e8);
        vm.assertEq(_round(ETH), 1);
        (uint32 r4, int128 p4,,) = hub.latestByIndex(4);
        (uint32 r5, int128 p5,,) = hub.latestByIndex(5);
        vm.assertEq(uint256(r4), 1);
        vm.assertEq(int256(p4), 4e8);
        vm.assertEq(uint256(r5), 1);
        vm.assertEq(int256(p5), 5e8);
    }

    function test_AllThreeSignersAccepted() public {
        IOracleHub.Report[] memory reports = _one(BTC_I, 1, 100_000e8, _now());
        _send(reports, _sign(reports, _all()));
        vm.assertEq(_round(BTC), 1);
    }

    function test_DigestBindsChainAndContract() public {
        IOracleHub.Report[] memory reports = _one(BTC_I, 1, 100_000e8, _now());
        OracleHub other = new OracleHub(OWNER, signers, 2, SKEW);
        vm.assertTrue(other.batchDigest(Packing.pack(reports)) != hub.batchDigest(Packing.pack(reports)));
        // The same report at another index is another digest.
        vm.assertTrue(
            hub.batchDigest(Packing.pack(_one(ETH_I, 1, 100_000e8, _now())))
                != hub.batchDigest(Packing.pack(reports))
        );
    }

    // ================================================================ submit: batch-level reverts

    function test_RevertIf_EmptyBatch() public {
        IOracleHub.Report[] memory reports = new IOracleHub.Report[](0);
        Sig[] memory sigs = _sign(reports, _quorum());
        vm.expectRevert(IOracleHub.EmptyBatch.selector);
        _send(reports, sigs);
    }

    function test_RevertIf_HubPaused() public {
        vm.prank(OWNER);
        hub.setPaused(true);
        IOracleHub.Report[] memory reports = _one(BTC_I, 1, 100_000e8, _now());
        Sig[] memory sigs = _sign(reports, _quorum());
        vm.expectRevert(IOracleHub.HubPaused.selector);
        _send(reports, sigs);
        vm.prank(OWNER);
        hub.setPaused(false);
        _send(reports, sigs);
        vm.assertEq(_round(BTC), 1);
    }

    function test_RevertIf_BelowThreshold() public {
        IOracleHub.Report[] memory reports = _one(BTC_I, 1, 100_000e8, _now());
        uint256[] memory k = new uint256[](1);
        k[0] = keys[0];
        Sig[] memory sigs = _sign(reports, k);
        vm.expectRevert(abi.encodeWithSelector(IOracleHub.BelowThreshold.selector, 1, 2));
        _send(reports, sigs);
    }

    function test_RevertIf_WrongSigner() public {
        IOracleHub.Report[] memory reports = _one(BTC_I, 1, 100_000e8, _now());
        uint256[] memory k = new uint256[](2);
        address intruder = vm.addr(0xDEAD);
        // Order the two signatures by address, as the contract requires.
        (k[0], k[1]) = intruder < signers[0] ? (uint256(0xDEAD), keys[0]) : (keys[0], uint256(0xDEAD));
        Sig[] memory sigs = _sign(reports, k);
        vm.expectRevert(abi.encodeWithSelector(IOracleHub.UnauthorizedSigner.selector, intruder));
        _send(reports, sigs);
    }

    function test_RevertIf_DuplicateSigner() public {
        IOracleHub.Report[] memory reports = _one(BTC_I, 1, 100_000e8, _now());
        uint256[] memory k = new uint256[](2);
        k[0] = keys[0];
        k[1] = keys[0];
        Sig[] memory sigs = _sign(reports, k);
        vm.expectRevert(
            abi.encodeWithSelector(IOracleHub.SignersNotAscending.selector, signers[0], signers[0])
        );
        _send(reports, sigs);
    }

    function test_RevertIf_SignersOutOfOrder() public {
        IOracleHub.Report[] memory reports = _one(BTC_I, 1, 100_000e8, _now());
        uint256[] memory k = new uint256[](2);
        k[0] = keys[1];
        k[1] = keys[0];
        Sig[] memory sigs = _sign(reports, k);
        vm.expectRevert(
            abi.encodeWithSelector(IOracleHub.SignersNotAscending.selector, signers[1], signers[0])
        );
        _send(reports, sigs);
    }

    function test_RevertIf_HighS() public {
        IOracleHub.Report[] memory reports = _one(BTC_I, 1, 100_000e8, _now());
        Sig[] memory sigs = _sign(reports, _quorum());
        // The malleable twin (n - s, flipped v) recovers the same signer but must be rejected.
        uint256 n = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141;
        sigs[0].s = bytes32(n - uint256(sigs[0].s));
        sigs[0].v = sigs[0].v == 27 ? 28 : 27;
        vm.expectRevert(abi.encodeWithSelector(IOracleHub.InvalidSignature.selector, 0));
        _send(reports, sigs);
    }

    function test_RevertIf_BadV() public {
        IOracleHub.Report[] memory reports = _one(BTC_I, 1, 100_000e8, _now());
        Sig[] memory sigs = _sign(reports, _quorum());
        sigs[1].v = 1;
        vm.expectRevert(abi.encodeWithSelector(IOracleHub.InvalidSignature.selector, 1));
        _send(reports, sigs);
    }

    function test_RevertIf_Unrecoverable() public {
        IOracleHub.Report[] memory reports = _one(BTC_I, 1, 100_000e8, _now());
        Sig[] memory sigs = _sign(reports, _quorum());
        sigs[0].r = bytes32(0);
        vm.expectRevert(abi.encodeWithSelector(IOracleHub.InvalidSignature.selector, 0));
        _send(reports, sigs);
    }

    function test_RevertIf_SignatureOverOtherReport() public {
        IOracleHub.Report[] memory signedReports = _one(BTC_I, 1, 100_000e8, _now());
        Sig[] memory sigs = _sign(signedReports, _quorum());
        IOracleHub.Report[] memory tampered = _one(BTC_I, 1, 200_000e8, _now());
        // The signatures recover to unrelated addresses; which check fires first depends on them.
        bool ok = _call(tampered, sigs);
        vm.assertFalse(ok);
        vm.assertEq(_round(BTC), 0);
    }

    function test_RevertIf_ReplayOnOtherDeployment() public {
        OracleHub other = new OracleHub(OWNER, signers, 2, SKEW);
        vm.prank(OWNER);
        other.addFeed(BTC, 8, BTC_MIN, BTC_MAX, 3600, MAX_AGE, "BTC / USD");
        IOracleHub.Report[] memory reports = _one(BTC_I, 1, 100_000e8, _now());
        Sig[] memory sigs = _sign(reports, _quorum()); // signed for `hub`
        (bool ok,) =
            address(other).call(abi.encodeCall(other.submit, (Packing.pack(reports), Packing.pack(sigs))));
        vm.assertFalse(ok);
    }

    // ================================================================ submit: skipped reports

    function _expectSkip(IOracleHub.Report[] memory reports, bytes4 reason) internal {
        Sig[] memory sigs = _sign(reports, _quorum());
        vm.expectEmit(true, false, false, true, address(hub));
        emit IOracleHub.ReportRejected(reports[0].feedIndex, reports[0].roundId, reason);
        _send(reports, sigs);
    }

    function test_SkipIf_RoundRepeatedOrOlder() public {
        _submit(_one(BTC_I, 1, 100_000e8, _now()));
        _submit(_one(BTC_I, 2, 100_002e8, _now()));
        _expectSkip(_one(BTC_I, 2, 100_003e8, _now()), IOracleHub.UnexpectedRound.selector);
        _expectSkip(_one(BTC_I, 1, 100_003e8, _now()), IOracleHub.UnexpectedRound.selector);
        _expectSkip(_one(BTC_I, 0, 100_003e8, _now()), IOracleHub.UnexpectedRound.selector);
        vm.assertEq(_round(BTC), 2);
        vm.assertEq(_price(BTC), 100_002e8);
        (int128 first,,) = hub.getRoundData(BTC, 1);
        vm.assertEq(int256(first), 100_000e8);
    }

    function test_SkipIf_RoundLeavesAGap() public {
        _submit(_one(BTC_I, 1, 100_000e8, _now()));
        _expectSkip(_one(BTC_I, 3, 100_003e8, _now()), IOracleHub.UnexpectedRound.selector);
        _expectSkip(_one(BTC_I, type(uint32).max, 100_003e8, _now()), IOracleHub.UnexpectedRound.selector);
        vm.assertEq(_round(BTC), 1);
        vm.assertEq(_price(BTC), 100_000e8);
        vm.expectRevert(abi.encodeWithSelector(IOracleHub.RoundNotAvailable.selector, BTC, 3, 1));
        hub.getRoundData(BTC, 3);
        // The round after the latest still applies.
        _submit(_one(BTC_I, 2, 100_002e8, _now()));
        vm.assertEq(_round(BTC), 2);
    }

    function test_SkipIf_FirstRoundIsNotOne() public {
        _expectSkip(_one(BTC_I, 0, 100_000e8, _now()), IOracleHub.UnexpectedRound.selector);
        _expectSkip(_one(BTC_I, 2, 100_000e8, _now()), IOracleHub.UnexpectedRound.selector);
        vm.assertEq(_round(BTC), 0);
        _submit(_one(BTC_I, 1, 100_000e8, _now()));
        vm.assertEq(_round(BTC), 1);
    }

    function test_SkipIf_RoundRepeatedOrAheadWithinBatch() public {
        // The hub applies a batch in order: [2, 1] skips 2 (a gap) then applies 1; [1, 1] applies the first.
        IOracleHub.Report[] memory reports = new IOracleHub.Report[](4);
        reports[0] = IOracleHub.Report({feedIndex: BTC_I, roundId: 2, price: 100_002e8, observedAt: _now()});
        reports[1] = IOracleHub.Report({feedIndex: BTC_I, roundId: 1, price: 100_001e8, observedAt: _now()});
        reports[2] = IOracleHub.Report({feedIndex: ETH_I, roundId: 1, price: 3_001e8, observedAt: _now()});
        reports[3] = IOracleHub.Report({feedIndex: ETH_I, roundId: 1, price: 3_009e8, observedAt: _now()});
        Sig[] memory sigs = _sign(reports, _quorum());
        vm.expectEmit(true, false, false, true, address(hub));
        emit IOracleHub.ReportRejected(BTC_I, 2, IOracleHub.UnexpectedRound.selector);
        vm.expectEmit(true, false, false, true, address(hub));
        emit IOracleHub.PriceUpdated(BTC_I, _update(1, 100_001e8, _now()));
        vm.expectEmit(true, false, false, true, address(hub));
        emit IOracleHub.PriceUpdated(ETH_I, _update(1, 3_001e8, _now()));
        vm.expectEmit(true, false, false, true, address(hub));
        emit IOracleHub.ReportRejected(ETH_I, 1, IOracleHub.UnexpectedRound.selector);
        _send(reports, sigs);
        vm.assertEq(_round(BTC), 1);
        vm.assertEq(_price(BTC), 100_001e8);
        vm.assertEq(_round(ETH), 1);
        vm.assertEq(_price(ETH), 3_001e8);
    }

    function test_SkipIf_RoundAtUint32Max() public {
        uint32 max = type(uint32).max;
        uint32 t = _now() - 10;
        // Put BTC just below the last round, then reach it through the normal path.
        _forceRound(BTC_I, max - 2, t);
        (uint32 forced,,,) = hub.latestByIndex(BTC_I);
        vm.assertEq(uint256(forced), uint256(max) - 2);
        vm.assertEq(_round(ETH), 0); // the helper touches BTC's 64 bits only
        IOracleHub.Report[] memory reports = new IOracleHub.Report[](2);
        reports[0] = IOracleHub.Report({feedIndex: BTC_I, roundId: max - 1, price: 100_001e8, observedAt: t});
        reports[1] = IOracleHub.Report({feedIndex: BTC_I, roundId: max, price: 100_002e8, observedAt: t + 1});
        _submit(reports);
        vm.assertEq(_round(BTC), max);
        vm.assertEq(_price(BTC), 100_002e8);

        // latest + 1 does not fit 32 bits: no round can follow, and nothing wraps to 0 or 1.
        _expectSkip(_one(BTC_I, 0, 100_003e8, _now()), IOracleHub.UnexpectedRound.selector);
        _expectSkip(_one(BTC_I, 1, 100_003e8, _now()), IOracleHub.UnexpectedRound.selector);
        _expectSkip(_one(BTC_I, max, 100_003e8, _now()), IOracleHub.UnexpectedRound.selector);
        _expectSkip(_one(BTC_I, max - 1, 100_003e8, _now()), IOracleHub.UnexpectedRound.selector);
        (int128 price,, uint32 round, uint32 observedAt,) = hub.latest(BTC);
        vm.assertEq(uint256(round), max);
        vm.assertEq(int256(price), 100_002e8);
        vm.assertEq(uint256(observedAt), uint256(t) + 1);

        // The stored rounds still answer.
        (int128 last, uint32 lastAt,) = hub.getRoundData(BTC, max);
        vm.assertEq(int256(last), 100_002e8);
        vm.assertEq(uint256(lastAt), uint256(t) + 1);
        (int128 previous,,) = hub.getRoundData(BTC, max - 1);
        vm.assertEq(int256(previous), 100_001e8);
        vm.expectRevert(abi.encodeWithSelector(IOracleHub.RoundNotAvailable.selector, BTC, 0, max));
        hub.getRoundData(BTC, 0);
        // ETH, in the same round slot, goes on normally.
        _submit(_one(ETH_I, 1, 3_000e8, _now()));
        vm.assertEq(_round(ETH), 1);
        vm.assertEq(_round(BTC), max);
    }

    function test_SkipIf_ReplayOfSameBatch() public {
        IOracleHub.Report[] memory reports = _one(BTC_I, 1, 100_000e8, _now());
        Sig[] memory sigs = _sign(reports, _quorum());
        _send(reports, sigs);
        vm.expectEmit(true, false, false, true, address(hub));
        emit IOracleHub.ReportRejected(BTC_I, 1, IOracleHub.UnexpectedRound.selector);
        _send(reports, sigs);
    }

    function test_SkipIf_ObservationTooFarInFuture() public {
        _expectSkip(_one(BTC_I, 1, 100_000e8, _now() + SKEW + 1), IOracleHub.ObservationInFuture.selector);
        vm.assertEq(_round(BTC), 0);
    }

    function test_ObservationAtSkewLimitAccepted() public {
        _submit(_one(BTC_I, 1, 100_000e8, _now() + SKEW));
        vm.assertEq(_round(BTC), 1);
    }

    function test_SkipIf_ObservationGoesBackwards() public {
        _submit(_one(BTC_I, 1, 100_000e8, _now()));
        _expectSkip(_one(BTC_I, 2, 100_000e8, _now() - 1), IOracleHub.ObservationTooOld.selector);
        // The same observation time again is allowed (a new round from the same data).
        _submit(_one(BTC_I, 2, 100_000e8, _now()));
        vm.assertEq(_round(BTC), 2);
    }

    function test_SkipIf_UnknownFeedIndex() public {
        _expectSkip(_one(7, 1, 100_000e8, _now()), IOracleHub.UnknownFeedIndex.selector);
    }

    function test_SkipIf_FeedPaused() public {
        vm.prank(OWNER);
        hub.setFeedPaused(BTC, true);
        _expectSkip(_one(BTC_I, 1, 100_000e8, _now()), IOracleHub.FeedPaused.selector);
        vm.prank(OWNER);
        hub.setFeedPaused(BTC, false);
        _submit(_one(BTC_I, 1, 100_000e8, _now()));
        vm.assertEq(_round(BTC), 1);
    }

    function test_SkipIf_OutOfBounds() public {
        _expectSkip(_one(BTC_I, 1, int128(BTC_MIN), _now()), IOracleHub.OutOfBounds.selector);
        _expectSkip(_one(BTC_I, 1, int128(BTC_MIN) - 1, _now()), IOracleHub.OutOfBounds.selector);
        _expectSkip(_one(BTC_I, 1, int128(BTC_MAX), _now()), IOracleHub.OutOfBounds.selector);
        _expectSkip(_one(BTC_I, 1, int128(BTC_MAX) + 1, _now()), IOracleHub.OutOfBounds.selector);
        _expectSkip(_one(BTC_I, 1, 0, _now()), IOracleHub.OutOfBounds.selector);
        _expectSkip(_one(BTC_I, 1, -1, _now()), IOracleHub.OutOfBounds.selector);
        _submit(_one(BTC_I, 1, int128(BTC_MIN) + 1, _now()));
        _submit(_one(BTC_I, 2, int128(BTC_MAX) - 1, _now()));
        vm.assertEq(_price(BTC), BTC_MAX - 1);
    }

    function test_BadReportIsSkippedOthersApply() public {
        IOracleHub.Report[] memory reports = new IOracleHub.Report[](2);
        reports[0] = IOracleHub.Report({feedIndex: BTC_I, roundId: 1, price: 1, observedAt: _now()});
        reports[1] = IOracleHub.Report({feedIndex: ETH_I, roundId: 1, price: 3_000e8, observedAt: _now()});
        Sig[] memory sigs = _sign(reports, _quorum());
        vm.expectEmit(true, false, false, true, address(hub));
        emit IOracleHub.ReportRejected(BTC_I, 1, IOracleHub.OutOfBounds.selector);
        vm.expectEmit(true, false, false, true, address(hub));
        emit IOracleHub.PriceUpdated(ETH_I, _update(1, 3_000e8, _now()));
        _send(reports, sigs);
        vm.assertEq(_round(BTC), 0);
        vm.assertEq(_round(ETH), 1);
    }

    // ================================================================ history and reads

    function test_HistoryKeepsLast64Rounds() public {
        for (uint32 r = 1; r <= 70; ++r) {
            _submit(_one(BTC_I, r, int128(100_000e8) + int128(uint128(r)), _now()));
        }
        for (uint32 r = 7; r <= 70; ++r) {
            (int128 p,,) = hub.getRoundData(BTC, r);
            vm.assertEq(int256(p), 100_000e8 + int256(uint256(r)));
        }
        vm.expectRevert(abi.encodeWithSelector(IOracleHub.RoundNotAvailable.selector, BTC, 6, 70));
        hub.getRoundData(BTC, 6);
    }

    function test_RevertIf_RoundNeverStored() public {
        vm.expectRevert(abi.encodeWithSelector(IOracleHub.RoundNotAvailable.selector, BTC, 1, 0));
        hub.getRoundData(BTC, 1);
        _submit(_one(BTC_I, 1, 100_000e8, _now()));
        _submit(_one(BTC_I, 2, 100_001e8, _now()));
        vm.expectRevert(abi.encodeWithSelector(IOracleHub.RoundNotAvailable.selector, BTC, 0, 2));
        hub.getRoundData(BTC, 0);
        vm.expectRevert(abi.encodeWithSelector(IOracleHub.RoundNotAvailable.selector, BTC, 3, 2));
        hub.getRoundData(BTC, 3);
        // Round 66 shares round 2's history slot but was never stored.
        vm.expectRevert(abi.encodeWithSelector(IOracleHub.RoundNotAvailable.selector, BTC, 66, 2));
        hub.getRoundData(BTC, 66);
        (int128 second,,) = hub.getRoundData(BTC, 2);
        vm.assertEq(int256(second), 100_001e8);
    }

    function test_LatestIsZeroBeforeFirstUpdate() public view {
        (int128 price, uint8 decimals, uint32 round, uint32 observedAt, uint32 updatedAt) = hub.latest(BTC);
        vm.assertEq(int256(price), 0);
        vm.assertEq(uint256(decimals), 8);
        vm.assertEq(uint256(round) + observedAt + updatedAt, 0);
    }

    function test_RevertIf_LatestOfUnknownFeed() public {
        bytes32 sol = keccak256("SOL/USD");
        vm.expectRevert(abi.encodeWithSelector(IOracleHub.UnknownFeed.selector, sol));
        hub.latest(sol);
        vm.expectRevert(abi.encodeWithSelector(IOracleHub.UnknownFeed.selector, sol));
        hub.feedIndex(sol);
        (uint32 round,,,) = hub.latestByIndex(9);
        vm.assertEq(uint256(round), 0);
        vm.expectRevert(abi.encodeWithSelector(IOracleHub.RoundNotAvailable.selector, bytes32(0), 1, 0));
        hub.roundByIndex(9, 1);
    }

    function test_LatestNoOlderThan() public {
        vm.expectRevert(abi.encodeWithSelector(IOracleHub.NoData.selector, BTC));
        hub.latestNoOlderThan(BTC, 100);
        _submit(_one(BTC_I, 1, 100_000e8, _now()));
        uint256 storedAt = block.timestamp;
        vm.warp(storedAt + 100);
        (int128 price,,,,) = hub.latestNoOlderThan(BTC, 100);
        vm.assertEq(int256(price), 100_000e8);
        vm.warp(storedAt + 101);
        vm.expectRevert(abi.encodeWithSelector(IOracleHub.StalePrice.selector, BTC, storedAt, 100));
        hub.latestNoOlderThan(BTC, 100);
    }

    function test_FeedInfo() public view {
        IOracleHub.FeedInfo memory info = hub.feedInfo(BTC);
        vm.assertEq(info.feedId, BTC);
        vm.assertEq(uint256(info.index), 0);
        vm.assertEq(uint256(info.decimals), 8);
        vm.assertEq(info.minPrice, BTC_MIN);
        vm.assertEq(info.maxPrice, BTC_MAX);
        vm.assertEq(uint256(info.heartbeat), 3600);
        vm.assertEq(uint256(info.maxReportAge), MAX_AGE);
        vm.assertEq(info.description, "BTC / USD");
        vm.assertFalse(info.paused);
        vm.assertEq(uint256(hub.feedIndex(ETH)), 1);
        vm.assertEq(uint256(hub.feedCount()), 2);
    }

    // ================================================================ feed admin

    function test_AddFeedEmits() public {
        bytes32 sol = keccak256("SOL/USD");
        vm.expectEmit(true, true, false, true, address(hub));
        emit IOracleHub.FeedAdded(sol, 2, 8, 1e8, 100_000e8, 60, 777, "SOL / USD");
        vm.prank(OWNER);
        uint16 index = hub.addFeed(sol, 8, 1e8, 100_000e8, 60, 777, "SOL / USD");
        vm.assertEq(uint256(index), 2);
        vm.assertEq(uint256(hub.feedInfo(sol).maxReportAge), 777);
    }

    function test_RevertIf_NotOwner() public {
        address bad = address(0xBAD);
        bytes memory notOwner = abi.encodeWithSelector(IOracleHub.NotOwner.selector, bad);
        vm.startPrank(bad);
        vm.expectRevert(notOwner);
        hub.addFeed(keccak256("X/Y"), 8, 0, 1e8, 60, MAX_AGE, "X / Y");
        vm.expectRevert(notOwner);
        hub.setBounds(BTC, 0, 1e8);
        vm.expectRevert(notOwner);
        hub.setMaxReportAge(BTC, 60);
        vm.expectRevert(notOwner);
        hub.setFeedPaused(BTC, true);
        vm.expectRevert(notOwner);
        hub.setPaused(true);
        vm.expectRevert(notOwner);
        hub.addSigner(address(0x1234));
        vm.expectRevert(notOwner);
        hub.removeSigner(signers[0]);
        vm.expectRevert(notOwner);
        hub.setThreshold(1);
        vm.expectRevert(notOwner);
        hub.transferOwnership(bad);
        vm.stopPrank();
    }

    function test_RevertIf_FeedAddedTwice() public {
        vm.prank(OWNER);
        vm.expectRevert(abi.encodeWithSelector(IOracleHub.FeedExists.selector, BTC));
        hub.addFeed(BTC, 8, BTC_MIN, BTC_MAX, 3600, MAX_AGE, "BTC / USD");
    }

    function test_RevertIf_InvalidDecimals() public {
        vm.prank(OWNER);
        vm.expectRevert(abi.encodeWithSelector(IOracleHub.InvalidDecimals.selector, 37));
        hub.addFeed(keccak256("X/Y"), 37, 0, 1e8, 60, MAX_AGE, "X / Y");
    }

    function test_RevertIf_InvalidBounds() public {
        vm.startPrank(OWNER);
        bytes32 x = keccak256("X/Y");
        vm.expectRevert(abi.encodeWithSelector(IOracleHub.InvalidBounds.selector, -1, 1e8));
        hub.addFeed(x, 8, -1, 1e8, 60, MAX_AGE, "X / Y");
        vm.expectRevert(abi.encodeWithSelector(IOracleHub.InvalidBounds.selector, 1e8, 1e8));
        hub.addFeed(x, 8, 1e8, 1e8, 60, MAX_AGE, "X / Y");
        // 123456789 needs more than 16 bits of mantissa.
        vm.expectRevert(abi.encodeWithSelector(IOracleHub.InvalidBounds.selector, 0, 123456789));
        hub.addFeed(x, 8, 0, 123456789, 60, MAX_AGE, "X / Y");
        vm.expectRevert(abi.encodeWithSelector(IOracleHub.InvalidBounds.selector, 2e8, 1e8));
        hub.setBounds(BTC, 2e8, 1e8);
        vm.stopPrank();
    }

    function test_RevertIf_TooManyFeeds() public {
        // feedCount lives in slot 1 at byte offset 23 (after _signerList, threshold, signerCount, paused;
        // see `forge inspect OracleHub storage-layout`).
        bytes32 slot1 = vm.load(address(hub), bytes32(uint256(1)));
        uint256 patched = (uint256(slot1) & ~(uint256(0xFFFF) << 184)) | (uint256(type(uint16).max) << 184);
        vm.store(address(hub), bytes32(uint256(1)), bytes32(patched));
        vm.assertEq(uint256(hub.feedCount()), type(uint16).max);
        vm.prank(OWNER);
        vm.expectRevert(IOracleHub.TooManyFeeds.selector);
        hub.addFeed(keccak256("X/Y"), 8, 0, 1e8, 60, MAX_AGE, "X / Y");
    }

    function test_SetBoundsAppliesAndEmits() public {
        vm.expectEmit(true, false, false, true, address(hub));
        emit IOracleHub.BoundsSet(BTC, 5e8, 6e8);
        vm.prank(OWNER);
        hub.setBounds(BTC, 5e8, 6e8);
        IOracleHub.FeedInfo memory info = hub.feedInfo(BTC);
        vm.assertEq(info.minPrice, 5e8);
        vm.assertEq(info.maxPrice, 6e8);
        _expectSkip(_one(BTC_I, 1, 100_000e8, _now()), IOracleHub.OutOfBounds.selector);
        _submit(_one(BTC_I, 1, 55e7, _now()));
        vm.assertEq(_price(BTC), 55e7);
        // ETH, in the same config slot, is untouched.
        vm.assertEq(hub.feedInfo(ETH).minPrice, 10e8);
    }

    function test_RevertIf_AdminOnUnknownFeed() public {
        bytes32 x = keccak256("X/Y");
        vm.startPrank(OWNER);
        vm.expectRevert(abi.encodeWithSelector(IOracleHub.UnknownFeed.selector, x));
        hub.setBounds(x, 0, 1e8);
        vm.expectRevert(abi.encodeWithSelector(IOracleHub.UnknownFeed.selector, x));
        hub.setFeedPaused(x, true);
        vm.expectRevert(abi.encodeWithSelector(IOracleHub.UnknownFeed.selector, x));
        hub.setMaxReportAge(x, 60);
        vm.stopPrank();
    }

    function test_PauseEvents() public {
        vm.startPrank(OWNER);
        vm.expectEmit(true, false, false, true, address(hub));
        emit IOracleHub.FeedPausedSet(ETH, true);
        hub.setFeedPaused(ETH, true);
        vm.expectEmit(false, false, false, true, address(hub));
        emit IOracleHub.HubPausedSet(true);
        hub.setPaused(true);
        vm.stopPrank();
        vm.assertTrue(hub.feedInfo(ETH).paused);
        vm.assertFalse(hub.feedInfo(BTC).paused);
        vm.assertTrue(hub.paused());
    }

    // ================================================================ signers and ownership

    function test_SignerLifecycleEmits() public {
        address s = address(0x5151);
        vm.startPrank(OWNER);
        vm.expectEmit(true, false, false, false, address(hub));
        emit IOracleHub.SignerAdded(s);
        hub.addSigner(s);
        vm.assertTrue(hub.isSigner(s));
        vm.assertEq(uint256(hub.signerCount()), 4);
        vm.expectEmit(false, false, false, true, address(hub));
        emit IOracleHub.ThresholdSet(4);
        hub.setThreshold(4);
        hub.setThreshold(2);
        vm.expectEmit(true, false, false, false, address(hub));
        emit IOracleHub.SignerRemoved(s);
        hub.removeSigner(s);
        vm.stopPrank();
        vm.assertFalse(hub.isSigner(s));
        vm.assertEq(uint256(hub.signerCount()), 3);
    }

    function test_RevertIf_SignerInvalid() public {
        vm.startPrank(OWNER);
        vm.expectRevert(IOracleHub.ZeroAddress.selector);
        hub.addSigner(address(0));
        vm.expectRevert(abi.encodeWithSelector(IOracleHub.SignerExists.selector, signers[0]));
        hub.addSigner(signers[0]);
        vm.expectRevert(abi.encodeWithSelector(IOracleHub.NotASigner.selector, address(0x77)));
        hub.removeSigner(address(0x77));
        hub.setThreshold(3);
        vm.expectRevert(abi.encodeWithSelector(IOracleHub.InvalidThreshold.selector, 3, 2));
        hub.removeSigner(signers[0]);
        vm.stopPrank();
    }

    function test_RevertIf_ThresholdOutOfRange() public {
        vm.startPrank(OWNER);
        vm.expectRevert(abi.encodeWithSelector(IOracleHub.InvalidThreshold.selector, 4, 3));
        hub.setThreshold(4);
        vm.expectRevert(abi.encodeWithSelector(IOracleHub.InvalidThreshold.selector, 0, 3));
        hub.setThreshold(0);
        vm.stopPrank();
    }

    function test_RevertIf_ConstructorArgumentsInvalid() public {
        vm.expectRevert(IOracleHub.ZeroAddress.selector);
        new OracleHub(address(0), signers, 2, SKEW);
        vm.expectRevert(abi.encodeWithSelector(IOracleHub.InvalidThreshold.selector, 4, 3));
        new OracleHub(OWNER, signers, 4, SKEW);
        address[] memory dup = new address[](2);
        dup[0] = signers[0];
        dup[1] = signers[0];
        vm.expectRevert(abi.encodeWithSelector(IOracleHub.SignerExists.selector, signers[0]));
        new OracleHub(OWNER, dup, 1, SKEW);
    }

    function test_RemovedSignerNoLongerCounts() public {
        vm.prank(OWNER);
        hub.removeSigner(signers[1]);
        IOracleHub.Report[] memory reports = _one(BTC_I, 1, 100_000e8, _now());
        Sig[] memory sigs = _sign(reports, _quorum());
        vm.expectRevert(abi.encodeWithSelector(IOracleHub.UnauthorizedSigner.selector, signers[1]));
        _send(reports, sigs);
    }

    function test_TwoStepOwnershipTransfer() public {
        address next = address(0xB0B0);
        vm.expectEmit(true, true, false, false, address(hub));
        emit IOracleHub.OwnershipTransferStarted(OWNER, next);
        vm.prank(OWNER);
        hub.transferOwnership(next);
        vm.assertEq(hub.owner(), OWNER);
        vm.assertEq(hub.pendingOwner(), next);

        vm.prank(address(0xBAD));
        vm.expectRevert(abi.encodeWithSelector(IOracleHub.NotPendingOwner.selector, address(0xBAD)));
        hub.acceptOwnership();

        vm.expectEmit(true, true, false, false, address(hub));
        emit IOracleHub.OwnershipTransferred(OWNER, next);
        vm.prank(next);
        hub.acceptOwnership();
        vm.assertEq(hub.owner(), next);
        vm.assertEq(hub.pendingOwner(), address(0));

        vm.prank(OWNER);
        vm.expectRevert(abi.encodeWithSelector(IOracleHub.NotOwner.selector, OWNER));
        hub.setPaused(true);
    }

    function test_RevertIf_AcceptWithoutProposal() public {
        vm.prank(address(0));
        vm.expectRevert(abi.encodeWithSelector(IOracleHub.NotPendingOwner.selector, address(0)));
        hub.acceptOwnership();
    }

    // ================================================================ packed wire format

    function test_BatchDigestIsEip712OfUnpackedReports() public view {
        IOracleHub.Report[] memory reports = new IOracleHub.Report[](2);
        reports[0] = IOracleHub.Report({feedIndex: BTC_I, roundId: 1, price: 100_000e8, observedAt: _now()});
        // Every field at its extreme, the price negative: the digest must see it sign-extended.
        reports[1] = IOracleHub.Report({
            feedIndex: type(uint16).max,
            roundId: type(uint32).max,
            price: type(int128).min,
            observedAt: type(uint32).max
        });
        bytes32 reportType =
            keccak256("Report(uint16 feedIndex,uint32 roundId,int128 price,uint32 observedAt)");
        bytes32[] memory hashes = new bytes32[](2);
        for (uint256 i = 0; i < 2; ++i) {
            IOracleHub.Report memory r = reports[i];
            hashes[i] = keccak256(abi.encode(reportType, r.feedIndex, r.roundId, r.price, r.observedAt));
        }
        bytes32 batchHash = keccak256(
            abi.encode(
                keccak256(
                    "Batch(Report[] reports)Report(uint16 feedIndex,uint32 roundId,int128 price,uint32 observedAt)"
                ),
                keccak256(abi.encodePacked(hashes))
            )
        );
        bytes32 domain = keccak256(
            abi.encode(
                keccak256(
                    "EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"
                ),
                keccak256("OracleHub"),
                keccak256("1"),
                block.chainid,
                address(hub)
            )
        );
        vm.assertEq(hub.domainSeparator(), domain);
        vm.assertEq(
            hub.batchDigest(Packing.pack(reports)), keccak256(abi.encodePacked("\x19\x01", domain, batchHash))
        );
        vm.assertEq(Packing.pack(reports).length, 52);
    }

    function test_RevertIf_ReportBytesNotWholeRecords() public {
        IOracleHub.Report[] memory two = new IOracleHub.Report[](2);
        two[0] = IOracleHub.Report({feedIndex: BTC_I, roundId: 1, price: 100_000e8, observedAt: _now()});
        two[1] = IOracleHub.Report({feedIndex: ETH_I, roundId: 1, price: 3_000e8, observedAt: _now()});
        bytes memory packed = Packing.pack(two);
        bytes memory sigs = Packing.pack(_sign(two, _quorum()));
        bytes memory oneByteMore = bytes.concat(packed, hex"00");
        bytes memory oneByteLess = new bytes(51);
        bytes memory firstBytes = new bytes(25);
        for (uint256 i = 0; i < 51; ++i) {
            oneByteLess[i] = packed[i];
            if (i < 25) firstBytes[i] = packed[i];
        }
        vm.expectRevert(abi.encodeWithSelector(IOracleHub.MalformedBatch.selector, 53, 130));
        hub.submit(oneByteMore, sigs);
        vm.expectRevert(abi.encodeWithSelector(IOracleHub.MalformedBatch.selector, 51, 130));
        hub.submit(oneByteLess, sigs);
        vm.expectRevert(abi.encodeWithSelector(IOracleHub.MalformedBatch.selector, 25, 130));
        hub.submit(firstBytes, sigs);
        vm.expectRevert(abi.encodeWithSelector(IOracleHub.MalformedBatch.selector, 53, 0));
        hub.batchDigest(oneByteMore);
        vm.expectRevert(abi.encodeWithSelector(IOracleHub.MalformedBatch.selector, 25, 0));
        hub.batchDigest(firstBytes);
        // Whole records go through.
        hub.submit(packed, sigs);
        vm.assertEq(_round(BTC), 1);
        vm.assertEq(_round(ETH), 1);
    }

    function test_RevertIf_SignatureBytesNotWholeRecords() public {
        IOracleHub.Report[] memory reports = _one(BTC_I, 1, 100_000e8, _now());
        bytes memory packed = Packing.pack(reports);
        bytes memory sigs = Packing.pack(_sign(reports, _quorum()));
        vm.assertEq(sigs.length, 130);
        bytes memory oneByteLess = new bytes(129);
        bytes memory underOneRecord = new bytes(64);
        for (uint256 i = 0; i < 129; ++i) {
            oneByteLess[i] = sigs[i];
            if (i < 64) underOneRecord[i] = sigs[i];
        }
        vm.expectRevert(abi.encodeWithSelector(IOracleHub.MalformedBatch.selector, 26, 131));
        hub.submit(packed, bytes.concat(sigs, hex"1b"));
        vm.expectRevert(abi.encodeWithSelector(IOracleHub.MalformedBatch.selector, 26, 129));
        hub.submit(packed, oneByteLess);
        vm.expectRevert(abi.encodeWithSelector(IOracleHub.MalformedBatch.selector, 26, 64));
        hub.submit(packed, underOneRecord);
        hub.submit(packed, sigs);
        vm.assertEq(_round(BTC), 1);
    }

    function test_RevertIf_MalformedBeforeEmptyOrPaused() public {
        vm.prank(OWNER);
        hub.setPaused(true);
        vm.expectRevert(abi.encodeWithSelector(IOracleHub.MalformedBatch.selector, 0, 1));
        hub.submit("", hex"1b");
        vm.expectRevert(abi.encodeWithSelector(IOracleHub.MalformedBatch.selector, 1, 0));
        hub.submit(hex"00", "");
        vm.expectRevert(IOracleHub.EmptyBatch.selector);
        hub.submit("", "");
        vm.expectRevert(IOracleHub.HubPaused.selector);
        hub.submit(Packing.pack(_one(BTC_I, 1, 100_000e8, _now())), "");
    }

    function test_SkipIf_PriceNegative() public {
        // A zero lower bound still rejects every price with the int128 sign bit set.
        vm.prank(OWNER);
        hub.setBounds(BTC, 0, BTC_MAX);
        _expectSkip(_one(BTC_I, 1, -1, _now()), IOracleHub.OutOfBounds.selector);
        _expectSkip(_one(BTC_I, 1, type(int128).min, _now()), IOracleHub.OutOfBounds.selector);
        _expectSkip(_one(BTC_I, 1, -100_000e8, _now()), IOracleHub.OutOfBounds.selector);
        // Sign bit set, low 127 bits inside the bounds: still negative, still rejected.
        int128 signBitAndInRange = int128(uint128(1 << 127) | uint128(100_000e8));
        vm.assertTrue(signBitAndInRange < 0);
        _expectSkip(_one(BTC_I, 1, signBitAndInRange, _now()), IOracleHub.OutOfBounds.selector);
        vm.assertEq(_round(BTC), 0);
        _submit(_one(BTC_I, 1, 1, _now()));
        vm.assertEq(_price(BTC), 1);
    }

    // ================================================================ report age

    function test_ReportAtMaxAgeBoundaryAccepted() public {
        // observedAt + maxReportAge == block.timestamp: still fresh enough.
        IOracleHub.Report[] memory reports = _one(BTC_I, 1, 100_000e8, _now() - MAX_AGE);
        Sig[] memory sigs = _sign(reports, _quorum());
        vm.expectEmit(true, false, false, true, address(hub));
        emit IOracleHub.PriceUpdated(BTC_I, _update(1, 100_000e8, _now() - MAX_AGE));
        _send(reports, sigs);
        vm.assertEq(_round(BTC), 1);
    }

    function test_SkipIf_ReportTooOld() public {
        _expectSkip(_one(BTC_I, 1, 100_000e8, _now() - MAX_AGE - 1), IOracleHub.ReportTooOld.selector);
        vm.assertEq(_round(BTC), 0);
        uint32 observed = _now() - MAX_AGE;
        _submit(_one(BTC_I, 1, 100_000e8, observed));
        // One second later the same observation time is one second too old.
        vm.warp(block.timestamp + 1);
        _expectSkip(_one(BTC_I, 2, 100_001e8, observed), IOracleHub.ReportTooOld.selector);
        vm.assertEq(_round(BTC), 1);
        vm.assertEq(_price(BTC), 100_000e8);
    }

    function test_SkipIf_WithheldBatchRelayedLate() public {
        uint256 signedAt = block.timestamp;
        // Signed at `signedAt`: BTC observed 100 s before, ETH just now.
        IOracleHub.Report[] memory reports = new IOracleHub.Report[](2);
        reports[0] = IOracleHub.Report({
            feedIndex: BTC_I, roundId: 1, price: 100_000e8, observedAt: uint32(signedAt - 100)
        });
        reports[1] =
            IOracleHub.Report({feedIndex: ETH_I, roundId: 1, price: 3_000e8, observedAt: uint32(signedAt)});
        Sig[] memory sigs = _sign(reports, _quorum());
        // Relayed 21 s later: BTC's observation is now MAX_AGE + 1 old, ETH's only 21 s.
        vm.warp(signedAt + 21);
        vm.expectEmit(true, false, false, true, address(hub));
        emit IOracleHub.ReportRejected(BTC_I, 1, IOracleHub.ReportTooOld.selector);
        vm.expectEmit(true, false, false, true, address(hub));
        emit IOracleHub.PriceUpdated(ETH_I, _update(1, 3_000e8, uint32(signedAt)));
        vm.prank(address(0xBEEF));
        _send(reports, sigs);
        vm.assertEq(_round(BTC), 0);
        vm.assertEq(_round(ETH), 1);
        // Withheld longer still, even ETH's report would have been refused.
        vm.warp(signedAt + MAX_AGE + 1);
        _expectSkip(_one(ETH_I, 2, 3_000e8, uint32(signedAt)), IOracleHub.ReportTooOld.selector);
    }

    function test_SetMaxReportAgeAppliesAndEmits() public {
        vm.expectEmit(true, false, false, true, address(hub));
        emit IOracleHub.MaxReportAgeSet(BTC, 10);
        vm.prank(OWNER);
        hub.setMaxReportAge(BTC, 10);
        vm.assertEq(uint256(hub.feedInfo(BTC).maxReportAge), 10);
        _expectSkip(_one(BTC_I, 1, 100_000e8, _now() - 11), IOracleHub.ReportTooOld.selector);
        _submit(_one(BTC_I, 1, 100_000e8, _now() - 10));
        vm.assertEq(_round(BTC), 1);
        // Raised to the limit, a report older than the default MAX_AGE passes.
        vm.prank(OWNER);
        hub.setMaxReportAge(ETH, 4095);
        _submit(_one(ETH_I, 1, 3_000e8, _now() - 4095));
        vm.assertEq(_round(ETH), 1);
    }

    function test_RevertIf_MaxReportAgeInvalid() public {
        vm.startPrank(OWNER);
        vm.expectRevert(abi.encodeWithSelector(IOracleHub.InvalidMaxReportAge.selector, 0));
        hub.setMaxReportAge(BTC, 0);
        vm.expectRevert(abi.encodeWithSelector(IOracleHub.InvalidMaxReportAge.selector, 4096));
        hub.setMaxReportAge(BTC, 4096);
        vm.expectRevert(abi.encodeWithSelector(IOracleHub.InvalidMaxReportAge.selector, type(uint32).max));
        hub.setMaxReportAge(BTC, type(uint32).max);
        bytes32 x = keccak256("X/Y");
        vm.expectRevert(abi.encodeWithSelector(IOracleHub.InvalidMaxReportAge.selector, 0));
        hub.addFeed(x, 8, 0, 1e8, 60, 0, "X / Y");
        vm.expectRevert(abi.encodeWithSelector(IOracleHub.InvalidMaxReportAge.selector, 4096));
        hub.addFeed(x, 8, 0, 1e8, 60, 4096, "X / Y");
        // The limits themselves are valid.
        hub.setMaxReportAge(BTC, 1);
        vm.assertEq(uint256(hub.feedInfo(BTC).maxReportAge), 1);
        hub.setMaxReportAge(BTC, 4095);
        vm.assertEq(uint256(hub.feedInfo(BTC).maxReportAge), 4095);
        hub.addFeed(x, 8, 0, 1e8, 60, 4095, "X / Y");
        vm.assertEq(uint256(hub.feedInfo(x).maxReportAge), 4095);
        hub.addFeed(keccak256("Y/Z"), 8, 0, 1e8, 60, 1, "Y / Z");
        vm.assertEq(uint256(hub.feedInfo(keccak256("Y/Z")).maxReportAge), 1);
        vm.stopPrank();
    }

    /// @dev Four feeds fill config slot 0; feed 3's maxReportAge is the slot's top 12 bits.
    function _fillConfigSlot() internal returns (bytes32[4] memory ids) {
        ids = [BTC, ETH, keccak256("F2"), keccak256("F3")];
        vm.startPrank(OWNER);
        hub.addFeed(ids[2], 36, 65_534e33, 65_535e33, 1, 4095, "F2");
        hub.addFeed(ids[3], 0, 1, 65_535e33, type(uint32).max, 1, "F3");
        hub.setFeedPaused(ids[2], true);
        vm.stopPrank();
    }

    function _infoHash(bytes32 id) internal view returns (bytes32) {
        return keccak256(abi.encode(hub.feedInfo(id)));
    }

    function test_SetMaxReportAgeLeavesOtherConfigIntact() public {
        bytes32[4] memory ids = _fillConfigSlot();
        uint32[4] memory ages = [uint32(4095), 1, 1, 4095]; // each flipped to the opposite extreme
        for (uint256 i = 0; i < 4; ++i) {
            bytes32[4] memory before;
            for (uint256 j = 0; j < 4; ++j) {
                before[j] = _infoHash(ids[j]);
            }
            IOracleHub.FeedInfo memory own = hub.feedInfo(ids[i]);
            vm.prank(OWNER);
            hub.setMaxReportAge(ids[i], ages[i]);
            for (uint256 j = 0; j < 4; ++j) {
                if (j != i) vm.assertEq(_infoHash(ids[j]), before[j]);
            }
            // The feed itself: only maxReportAge changed.
            own.maxReportAge = ages[i];
            vm.assertEq(_infoHash(ids[i]), keccak256(abi.encode(own)));
        }
        IOracleHub.FeedInfo memory f2 = hub.feedInfo(ids[2]);
        vm.assertTrue(f2.paused);
        vm.assertEq(uint256(f2.decimals), 36);
        vm.assertEq(f2.minPrice, 65_534e33);
        vm.assertEq(f2.maxPrice, 65_535e33);
        vm.assertEq(uint256(f2.maxReportAge), 1);
        // And the other setters leave maxReportAge alone.
        vm.startPrank(OWNER);
        hub.setBounds(ids[3], 2, 3);
        hub.setFeedPaused(ids[3], true);
        vm.stopPrank();
        vm.assertEq(uint256(hub.feedInfo(ids[3]).maxReportAge), 4095);
        vm.assertEq(uint256(hub.feedInfo(ids[2]).maxReportAge), 1);
    }

    function test_MaxReportAgeInTopBitsOfConfigSlotApplies() public {
        bytes32[4] memory ids = _fillConfigSlot();
        vm.prank(OWNER);
        hub.setMaxReportAge(ids[3], 4095);
        _submit(_one(3, 1, 100e8, _now() - 4095));
        (,, uint32 round,,) = hub.latest(ids[3]);
        vm.assertEq(uint256(round), 1);
        vm.prank(OWNER);
        hub.setMaxReportAge(ids[3], 1);
        _expectSkip(_one(3, 2, 100e8, _now() - 2), IOracleHub.ReportTooOld.selector);
        _submit(_one(3, 2, 100e8, _now() - 1));
        (,, round,,) = hub.latest(ids[3]);
        vm.assertEq(uint256(round), 2);
    }

    // ================================================================ skip reason precedence

    function test_SkipReasonPrecedence() public {
        // BTC at round 1, observed at T0 + SKEW (allowed at T0).
        _submit(_one(BTC_I, 1, 100_000e8, _now() + SKEW));
        // Index 2 has no feed (config word of slot 0, all zero): unknown beats everything.
        _expectSkip(_one(2, 9, -1, 0), IOracleHub.UnknownFeedIndex.selector);
        vm.prank(OWNER);
        hub.setFeedPaused(BTC, true);
        // Paused beats wrong round, old observation, too old a report and bounds.
        vm.warp(T0 + 1000);
        _expectSkip(_one(BTC_I, 9, -1, 1), IOracleHub.FeedPaused.selector);
        vm.prank(OWNER);
        hub.setFeedPaused(BTC, false);
        _expectSkip(_one(BTC_I, 9, -1, 1), IOracleHub.UnexpectedRound.selector);
        // Right round: observation going back beats too old a report and bounds.
        _expectSkip(_one(BTC_I, 2, -1, uint32(T0)), IOracleHub.ObservationTooOld.selector);
        // Observation not going back (but 1000 - SKEW s old): too old a report beats bounds.
        _expectSkip(_one(BTC_I, 2, -1, uint32(T0 + SKEW)), IOracleHub.ReportTooOld.selector);
        // Too far ahead beats bounds.
        _expectSkip(_one(BTC_I, 2, -1, _now() + SKEW + 1), IOracleHub.ObservationInFuture.selector);
        _expectSkip(_one(BTC_I, 2, -1, _now()), IOracleHub.OutOfBounds.selector);
        // With the clock set back under the stored observation, going back beats too far ahead.
        vm.warp(T0 - 100);
        _expectSkip(_one(BTC_I, 2, 100_000e8, uint32(T0)), IOracleHub.ObservationTooOld.selector);
        vm.warp(T0 + 1000);
        _submit(_one(BTC_I, 2, 100_001e8, _now()));
        vm.assertEq(_round(BTC), 2);
    }

    // ================================================================ signer list

    function test_SignersAscendingAfterAddsAndRemoves() public {
        _assertSigners(signers);
        vm.assertEq(hub.signers()[0], signers[0]);
        // Additions below, above and between the current signers, in no particular order.
        address[6] memory extra = [
            address(type(uint160).max),
            address(1),
            address(uint160(signers[0]) + 1),
            address(uint160(signers[2]) - 1),
            address(uint160(signers[1]) + 1),
            address(2)
        ];
        address[] memory expected = new address[](9);
        for (uint256 i = 0; i < 3; ++i) {
            expected[i] = signers[i];
        }
        vm.startPrank(OWNER);
        for (uint256 i = 0; i < extra.length; ++i) {
            hub.addSigner(extra[i]);
            expected[3 + i] = extra[i];
            address[] memory sofar = new address[](4 + i);
            for (uint256 j = 0; j < sofar.length; ++j) {
                sofar[j] = expected[j];
            }
            _assertSigners(sofar);
        }
        vm.assertEq(hub.signers()[0], address(1));
        vm.assertEq(hub.signers()[8], address(type(uint160).max));
        // Remove the last, the first, then ones in the middle.
        address[5] memory gone = [address(type(uint160).max), address(1), signers[1], address(2), signers[0]];
        for (uint256 i = 0; i < gone.length; ++i) {
            hub.removeSigner(gone[i]);
            vm.assertFalse(hub.isSigner(gone[i]));
            uint256 k;
            address[] memory left = new address[](8 - i);
            for (uint256 j = 0; j < expected.length; ++j) {
                bool removed;
                for (uint256 g = 0; g <= i; ++g) {
                    if (expected[j] == gone[g]) removed = true;
                }
                if (!removed) left[k++] = expected[j];
            }
            _assertSigners(left);
        }
        vm.stopPrank();
    }

    function test_RemoveThenReAddSigner() public {
        IOracleHub.Report[] memory reports = _one(BTC_I, 1, 100_000e8, _now());
        Sig[] memory sigs = _sign(reports, _quorum());
        vm.startPrank(OWNER);
        hub.removeSigner(signers[1]);
        vm.expectRevert(abi.encodeWithSelector(IOracleHub.NotASigner.selector, signers[1]));
        hub.removeSigner(signers[1]);
        vm.stopPrank();
        vm.expectRevert(abi.encodeWithSelector(IOracleHub.UnauthorizedSigner.selector, signers[1]));
        _send(reports, sigs);
        vm.expectEmit(true, false, false, false, address(hub));
        emit IOracleHub.SignerAdded(signers[1]);
        vm.prank(OWNER);
        hub.addSigner(signers[1]);
        _assertSigners(signers);
        vm.assertEq(hub.signers()[1], signers[1]);
        // The same signatures count again.
        _send(reports, sigs);
        vm.assertEq(_round(BTC), 1);
    }

    function test_RevertIf_SignedByRemovedLowestSigner() public {
        vm.prank(OWNER);
        hub.removeSigner(signers[0]);
        IOracleHub.Report[] memory reports = _one(BTC_I, 1, 100_000e8, _now());
        Sig[] memory sigs = _sign(reports, _quorum()); // signers[0], signers[1]
        vm.expectRevert(abi.encodeWithSelector(IOracleHub.UnauthorizedSigner.selector, signers[0]));
        _send(reports, sigs);
    }

    function test_RevertIf_SignedByRemovedHighestSigner() public {
        vm.prank(OWNER);
        hub.removeSigner(signers[2]);
        IOracleHub.Report[] memory reports = _one(BTC_I, 1, 100_000e8, _now());
        uint256[] memory k = new uint256[](2);
        (k[0], k[1]) = (keys[1], keys[2]);
        Sig[] memory sigs = _sign(reports, k);
        vm.expectRevert(abi.encodeWithSelector(IOracleHub.UnauthorizedSigner.selector, signers[2]));
        _send(reports, sigs);
        // The two remaining signers still make a quorum.
        _submit(reports);
        vm.assertEq(_round(BTC), 1);
    }

    function test_AnyThreeOfFourSignersAccepted() public {
        // A fourth signer and a threshold of 3, as a deployment of 4 nodes.
        uint256[] memory four = new uint256[](4);
        address[] memory addrs = new address[](4);
        for (uint256 i = 0; i < 3; ++i) {
            (four[i], addrs[i]) = (keys[i], signers[i]);
        }
        (four[3], addrs[3]) = (0xD00D, vm.addr(0xD00D));
        for (uint256 i = 0; i < 4; ++i) {
            for (uint256 j = i + 1; j < 4; ++j) {
                if (addrs[j] < addrs[i]) {
                    (addrs[i], addrs[j]) = (addrs[j], addrs[i]);
                    (four[i], four[j]) = (four[j], four[i]);
                }
            }
        }
        vm.startPrank(OWNER);
        hub.addSigner(vm.addr(0xD00D));
        hub.setThreshold(3);
        vm.stopPrank();
        _assertSigners(addrs);
        for (uint256 left = 0; left < 4; ++left) {
            uint256[] memory three = new uint256[](3);
            uint256 n;
            for (uint256 i = 0; i < 4; ++i) {
                if (i != left) three[n++] = four[i];
            }
            uint32 round = uint32(left + 1);
            IOracleHub.Report[] memory reports =
                _one(BTC_I, round, 100_000e8 + int128(uint128(round)), _now());
            _send(reports, _sign(reports, three));
            vm.assertEq(_round(BTC), round);
        }
        // Two of four are not enough; all four are.
        IOracleHub.Report[] memory next = _one(BTC_I, 5, 100_005e8, _now());
        uint256[] memory two = new uint256[](2);
        (two[0], two[1]) = (four[1], four[3]);
        Sig[] memory sigs = _sign(next, two);
        vm.expectRevert(abi.encodeWithSelector(IOracleHub.BelowThreshold.selector, 2, 3));
        _send(next, sigs);
        _send(next, _sign(next, four));
        vm.assertEq(_round(BTC), 5);
    }
}
